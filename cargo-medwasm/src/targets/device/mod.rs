//! Devices: the portable bench harness run on a real machine over SSH (`bench
//! --device ssh://user@host[:port]`, or a fleet file), with the runtime installed
//! there (`wasmtime`, `wasmedge` or Node.js). The system `ssh` does the work (files go
//! through it to `cat`, so the device needs no SFTP or `scp`), so
//! the user's ssh config, agent and keys apply; every call runs in batch mode with a
//! connect timeout. The harness (and Node.js's wrapper) go to a temporary folder on
//! the device, which is removed at the end whatever happened.
//!
//! A device is a target like the others, made from the command line rather than
//! listed in `targets::all()`; its rows carry the device's `uname -m`, CPU model and
//! runtime version.

mod ssh;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::artifact::{BuildOutput, Embedded};
use crate::harness;
use crate::prereq::Check;
use crate::project::Project;
use crate::protocol::{Execution, Job, Progress};
use crate::report::Size;
use crate::targets::target::Target;
use crate::toolchain::TargetSpec;
use crate::ui::Ui;

pub use self::ssh::{Address, is_unreachable};

/// The harness is a WASI preview 1 module, whatever the device's CPU.
const SPEC: TargetSpec = TargetSpec {
    name: "device",
    triple: harness::TRIPLE,
    rustflags: &["-C", "target-feature=+simd128"],
    purpose: "`cargo medwasm bench --device`",
    buildable: true,
};

/// The WASI runtime a device runs the harness with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// The Wasmtime CLI: `wasmtime run harness.wasm`.
    Wasmtime,
    /// The WasmEdge CLI, ahead-of-time compiled on the device: `wasmedge compile`,
    /// then `wasmedge --run-mode aot`.
    Wasmedge,
    /// Node.js 20 or newer, through `node:wasi`.
    Node,
}

impl Runtime {
    /// The program on the device.
    fn program(self) -> &'static str {
        match self {
            Runtime::Wasmtime => "wasmtime",
            Runtime::Wasmedge => "wasmedge",
            Runtime::Node => "node",
        }
    }
}

/// One device to bench on.
#[derive(Debug, Clone)]
pub struct Device {
    /// What the report calls it (the fleet file's name, else the address).
    pub name: &'static str,
    /// Where it is.
    pub address: Address,
    /// The runtime it runs the harness with.
    pub runtime: Runtime,
}

/// A fleet file: `[[device]]` tables of `name`, `address` and `runtime`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fleet {
    device: Vec<FleetDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetDevice {
    name: String,
    address: String,
    #[serde(default)]
    runtime: Option<Runtime>,
}

impl Device {
    /// A device from `ssh://user@host[:port]` (or `user@host[:port]`) with `runtime`.
    pub fn parse(address: &str, runtime: Runtime) -> Result<Device> {
        let address = Address::parse(address)?;
        Ok(Device {
            name: Box::leak(address.to_string().into_boxed_str()),
            address,
            runtime,
        })
    }

    /// The devices of a fleet file; `runtime` where a device names none.
    pub fn fleet(path: &Path, runtime: Runtime) -> Result<Vec<Device>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the fleet file `{}`", path.display()))?;
        let fleet: Fleet = toml::from_str(&text).with_context(|| {
            format!(
                "`{}` is not a fleet file: write one `[[device]]` table per device with `name`, `address` (`ssh://user@host:port`) and optionally `runtime` (wasmtime, wasmedge or node)",
                path.display()
            )
        })?;
        if fleet.device.is_empty() {
            bail!("the fleet file `{}` lists no `[[device]]`", path.display());
        }
        let mut devices: Vec<Device> = Vec::with_capacity(fleet.device.len());
        for d in fleet.device {
            if devices.iter().any(|o| o.name == d.name) {
                bail!(
                    "the fleet file `{}` names two devices `{}`; give each its own name",
                    path.display(),
                    d.name
                );
            }
            let address = Address::parse(&d.address)
                .with_context(|| format!("device `{}` of `{}`", d.name, path.display()))?;
            devices.push(Device {
                name: Box::leak(d.name.into_boxed_str()),
                address,
                runtime: d.runtime.unwrap_or(runtime),
            });
        }
        Ok(devices)
    }

    /// Runs the harness on the device: probe, copy, run, and remove what was copied.
    fn bench(&self, job: &Job<'_>) -> Result<Execution> {
        let ssh = ssh::Session::new(&self.address, self.name);
        let program = self.runtime.program();
        let probe = ssh.run(
            "probe the device",
            &format!(
                "printf 'arch=%s\\n' \"$(uname -m)\"; \
                 printf 'cpu=%s\\n' \"$(grep -m1 -E '^(model name|Model|Hardware|cpu model)' /proc/cpuinfo 2>/dev/null | cut -d: -f2-)\"; \
                 if command -v {program} >/dev/null 2>&1; then printf 'runtime=%s\\n' \"$({program} --version 2>&1 | head -n1)\"; fi; \
                 printf 'tmp=%s\\n' \"$(mktemp -d 2>/dev/null || mktemp -d -t medwasm)\""
            ),
            Duration::from_secs(60),
        )?;
        let field = |key: &str| -> String {
            probe
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let tmp = field("tmp");
        if !tmp.starts_with('/') {
            bail!(
                "cannot make a temporary folder on `{}` (`mktemp -d` printed `{tmp}`)",
                self.name
            );
        }
        // From here on the folder exists; it goes whatever happens next.
        let result = self.bench_in(&ssh, job, &tmp, &field("runtime"));
        let cleanup = ssh.run(
            "remove the temporary folder",
            &format!("rm -rf -- {}", ssh::quote(&tmp)),
            Duration::from_secs(60),
        );
        let execution = result?;
        cleanup?;
        let (arch, cpu) = (field("arch"), field("cpu"));
        Ok(Execution {
            runtime: format!(
                "{} on `{}` ({arch}{}{})",
                execution.runtime,
                self.name,
                if cpu.is_empty() { "" } else { ", " },
                cpu
            ),
            ..execution
        })
    }

    fn bench_in(
        &self,
        ssh: &ssh::Session,
        job: &Job<'_>,
        tmp: &str,
        version: &str,
    ) -> Result<Execution> {
        let program = self.runtime.program();
        if version.is_empty() {
            bail!(
                "`{program}` is not on the PATH of a non-interactive ssh login on `{}`; install it there system-wide (see docs/device-bench.md), or add its folder to PATH where a non-interactive shell reads it",
                self.name
            );
        }
        // Node's runner is beside the harness (`harness::emit` writes it).
        let run_mjs = harness::node_runner(job.artifact);
        let harness_path = format!("{tmp}/harness.wasm");
        ssh.upload(job.artifact, &harness_path, Duration::from_secs(300))?;
        if self.runtime == Runtime::Node {
            ssh.upload(&run_mjs, &format!("{tmp}/run.mjs"), Duration::from_secs(60))?;
        }
        let harness = ssh::quote(&harness_path);
        let runs = job.runs;
        let command = match self.runtime {
            Runtime::Wasmtime => format!("wasmtime run {harness} {runs}"),
            Runtime::Node => format!(
                "node --no-warnings {} {harness} {runs}",
                ssh::quote(&format!("{tmp}/run.mjs"))
            ),
            // Compiled on the device, for its CPU; without `--run-mode aot`,
            // WasmEdge 0.17 would interpret the AOT file silently.
            Runtime::Wasmedge => {
                let aot = ssh::quote(&format!("{tmp}/harness.aot.wasm"));
                format!(
                    "wasmedge compile {harness} {aot} >/dev/null && wasmedge --run-mode aot {aot} {runs}"
                )
            }
        };
        let stdout = ssh.run("run the harness", &command, Duration::from_secs(900))?;
        let mode = if self.runtime == Runtime::Wasmedge {
            ", AOT"
        } else {
            ""
        };
        // `node --version` prints only `v20.20.2`; Wasmtime and WasmEdge name themselves.
        let version = if version.to_ascii_lowercase().starts_with(program) {
            version.to_string()
        } else {
            format!("{program} {version}")
        };
        harness::execution(
            stdout.as_bytes(),
            job.manifest,
            format!("{version}{mode}, harness"),
            None,
        )
        .with_context(|| format!("the harness on `{}`", self.name))
    }
}

impl Target for Device {
    fn name(&self) -> &'static str {
        self.name
    }

    fn about(&self) -> &'static str {
        "a device reached over SSH"
    }

    fn spec(&self) -> &'static TargetSpec {
        &SPEC
    }

    fn builds_as(&self) -> &'static str {
        SPEC.name
    }

    fn build(&self, project: &Project, release: bool, ui: &Ui) -> Result<BuildOutput> {
        crate::toolchain::Rustc::in_dir(&project.root).require_target(&SPEC)?;
        let embedded = Embedded::for_build(project, SPEC.name, release)?;
        let dir = project.artifact_dir(SPEC.name);
        let Some(artifact) = harness::emit(project, &dir, release, ui)? else {
            bail!(
                "benching on a device runs the stored test vectors, and `{}` has none: import with `--inputs x.npy`",
                project.name
            );
        };
        let bytes = std::fs::metadata(&artifact)
            .with_context(|| format!("cannot read `{}`", artifact.display()))?
            .len();
        Ok(BuildOutput {
            artifact,
            size: Size {
                total: bytes,
                code: bytes.saturating_sub(embedded.manifest.blob_bytes),
                weights: embedded.manifest.blob_bytes.min(bytes),
                metadata: 0,
            },
            embedded,
        })
    }

    fn summary(&self, built: &BuildOutput) -> Result<String> {
        Ok(format!(
            "{}  bench harness for devices",
            crate::artifact::shown(&built.artifact)
        ))
    }

    fn open(&self, _project: &Project, path: &Path) -> Result<BuildOutput> {
        bail!(
            "`--artifact {}` runs a local file as it is; a device runs the bench harness `cargo medwasm bench --device` builds (leave out `--artifact`)",
            path.display()
        )
    }

    fn execute(&self, job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
        progress(Progress::Phase {
            verb: "Device",
            len: 1,
        });
        let execution = self.bench(job);
        progress(Progress::Step);
        execution
    }

    fn checks(&self, _sysroot: Option<&Path>) -> Vec<Check> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fleet.toml");
        std::fs::write(
            &file,
            "[[device]]\nname = \"pi\"\naddress = \"ssh://pi@10.0.0.2:2222\"\nruntime = \"wasmedge\"\n\n[[device]]\nname = \"gw\"\naddress = \"root@gw\"\n",
        )
        .unwrap();
        let fleet = Device::fleet(&file, Runtime::Node).unwrap();
        assert_eq!(fleet.len(), 2);
        assert_eq!(fleet[0].name, "pi");
        assert_eq!(fleet[0].address.to_string(), "pi@10.0.0.2:2222");
        assert_eq!(fleet[0].runtime, Runtime::Wasmedge);
        assert_eq!(fleet[1].runtime, Runtime::Node);

        std::fs::write(&file, "[[device]]\nname = \"pi\"\naddres = \"x\"\n").unwrap();
        let err = format!("{:#}", Device::fleet(&file, Runtime::Node).unwrap_err());
        assert!(err.contains("not a fleet file"), "{err}");
        std::fs::write(
            &file,
            "[[device]]\nname = \"pi\"\naddress = \"a\"\n[[device]]\nname = \"pi\"\naddress = \"b\"\n",
        )
        .unwrap();
        let err = format!("{:#}", Device::fleet(&file, Runtime::Node).unwrap_err());
        assert!(err.contains("two devices `pi`"), "{err}");
    }
}
