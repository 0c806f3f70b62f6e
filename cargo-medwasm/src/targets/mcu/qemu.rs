//! The QEMU runner of the `mcu` target: boots the firmware ELF in
//! `qemu-system-arm` with the board's machine and the instruction-counting plugin
//! (`plugin.rs`), hands it the test vectors over semihosting, and reads back every
//! output (as f32 bits), the stack peak and the instruction counts.
//!
//! Counting: the plugin counts every instruction QEMU executes, exactly, and records
//! the count between the firmware's markers around `medwasm_init` and each timed
//! `medwasm_run`. No clock is involved: the same ELF gives the same counts on any host
//! and on every run, wherever its code lands in flash. The count says nothing about
//! cycles: QEMU does not model pipelines, wait states or caches (nor DWT CYCCNT).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::artifacts::{BOARD_FILE, VECTORS_FILE, read_memory};
use super::board::Board;
use super::firmware::TRIPLE;
use super::plugin::{self, COUNTS_FILE};
use crate::manifest::Manifest;
use crate::process::{Supervised, Waited};
use crate::protocol::{ABI_VERSION, DetectorError, Execution, Inference, Job, Outcome, Progress};
use crate::report::{Device, Finding, Latency};
use crate::toolchain;
use crate::vectors::encode_binary;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-arm";

/// What the report says about the count.
pub const COUNTING: &str = "a QEMU TCG plugin counts every executed instruction exactly: instructions, not cycles (no pipeline, wait-state or cache model)";

/// The version of the firmware's report this runner reads.
const FIRMWARE_PROTOCOL: u32 = 3;

/// Longest a firmware run may take before it is killed as hung.
const TIMEOUT: Duration = Duration::from_secs(900);

/// What QEMU prints for `-plugin` when it was built without plugin support.
const NO_PLUGINS: &str = "plugin interface not enabled";

/// What to install when QEMU cannot load plugins.
const PLUGIN_QEMU: &str = "`bench --target mcu` counts instructions with a QEMU TCG plugin (plugin API version 1, QEMU 7.2 to 8.2); install a QEMU built with plugin support, such as Debian 12's: `sudo apt-get install qemu-system-arm`";

/// Why the firmware cannot run here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    if which::which(QEMU).is_err() {
        return Some(format!(
            "`{QEMU}` is not installed; install it with `sudo apt-get install qemu-system-arm` (Debian/Ubuntu) or run `.ci/setup`"
        ));
    }
    if let Some(why) = plugins_missing() {
        return Some(why);
    }
    // Rust links the counting plugin, a host shared library, with `cc`.
    if cfg!(unix) && which::which("cc").is_err() {
        return Some(plugin::missing_cc());
    }
    // Without the Rust target the firmware cannot be built; `--target all` then
    // skips this target instead of failing the others.
    let rustc = toolchain::Rustc::in_dir(Path::new("."));
    match rustc.has_target(TRIPLE) {
        Ok(true) | Err(_) => None,
        Ok(false) => Some(format!(
            "the Rust target `{TRIPLE}` is not installed; run `rustup target add {TRIPLE}`"
        )),
    }
}

/// Why `qemu-system-arm` cannot load plugins, or `None` when it can (or the probe
/// cannot tell: the bench itself then says what went wrong).
///
/// The probe asks QEMU to load a plugin that does not exist: a QEMU with plugin
/// support stops at once with "Could not load plugin", one without with
/// [`NO_PLUGINS`]; neither starts a machine.
pub fn plugins_missing() -> Option<String> {
    // QEMU 9 raised the oldest plugin API it loads above the version 1 the counter
    // speaks: it would load no plugin at `bench`, so say it now.
    if let Some(found) = qemu_version_numbers()
        && found.0 >= 9
    {
        return Some(format!(
            "`{QEMU}` is version {}.{}.{}, which refuses the instruction counter's plugin API version 1; {PLUGIN_QEMU}",
            found.0, found.1, found.2
        ));
    }
    let mut cmd = Command::new(QEMU);
    cmd.args(["-machine", "none", "-display", "none", "-monitor", "none"])
        .args([
            "-serial",
            "none",
            "-plugin",
            "file=/nonexistent/medwasm-probe.so",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let waited = Supervised::spawn(&mut cmd)
        .ok()?
        .wait_output(Duration::from_secs(20))
        .ok()?;
    String::from_utf8_lossy(&waited.stderr)
        .contains(NO_PLUGINS)
        .then(|| format!("`{QEMU}` was built without TCG plugin support; {PLUGIN_QEMU}"))
}

/// Runs `job`'s firmware in QEMU.
pub fn execute(job: &Job<'_>, progress: &mut dyn FnMut(Progress)) -> Result<Execution> {
    let dir = job
        .artifact
        .parent()
        .context("the firmware has no folder; this is a bug in cargo-medwasm")?;
    let board = Board::from_file(&dir.join(BOARD_FILE))?;
    let Some(qemu) = &board.qemu else {
        bail!(
            "board `{}` has no `[qemu]` machine, and `bench --target mcu` runs in QEMU only (a real board over probe-rs, `--device`, is planned: see docs/mcu.md)",
            board.name
        );
    };
    let memory = read_memory(dir)?;
    let elf = std::fs::read(job.artifact)
        .with_context(|| format!("cannot read `{}`", job.artifact.display()))?;
    let markers = plugin::markers(&elf)?;

    progress(Progress::Phase {
        verb: "Preparing",
        len: 1,
    });
    let library = plugin::build(&dir.join("qemu-plugin"))?;
    progress(Progress::Step);

    // The vectors go into a folder of their own, QEMU's working directory, where
    // the firmware opens them by a relative name and the plugin writes its counts.
    let work = dir.join("bench");
    std::fs::create_dir_all(&work)
        .with_context(|| format!("cannot create `{}`", work.display()))?;
    let cases: Vec<Vec<Vec<f32>>> = job.cases.iter().map(|c| c.inputs.clone()).collect();
    std::fs::write(
        work.join(VECTORS_FILE),
        encode_binary(&job.manifest.inputs, &cases, job.runs),
    )
    .with_context(|| format!("cannot write the test vectors into `{}`", work.display()))?;
    // A count file left by an earlier run must not pass for this run's.
    let counts_path = work.join(COUNTS_FILE);
    match std::fs::remove_file(&counts_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove `{}`", counts_path.display()));
        }
        _ => {}
    }

    progress(Progress::Phase {
        verb: "Running",
        len: 1,
    });
    let mut cmd = qemu_command(&qemu.machine, job.artifact, &work);
    cmd.arg("-plugin")
        .arg(plugin::plugin_option(&library, markers));
    let line = toolchain::command_line(&cmd);
    let waited = run_supervised(&mut cmd)?;
    let stderr = String::from_utf8_lossy(&waited.stderr).into_owned();
    if waited.status.is_some_and(|s| !s.success()) {
        if stderr.contains(NO_PLUGINS) {
            bail!("`{QEMU}` was built without TCG plugin support; {PLUGIN_QEMU}");
        }
        if stderr.contains("Could not load plugin") {
            bail!(
                "`{QEMU}` could not load the instruction counter `{}`: {}\n{PLUGIN_QEMU}",
                library.display(),
                stderr.trim()
            );
        }
    }
    let stdout = checked_stdout(waited, &line)?;
    progress(Progress::Step);

    let run = parse(&stdout, job.manifest)
        .with_context(|| format!("the firmware's report from `{line}` is not usable"))?;
    if run.outcomes.len() != job.cases.len() {
        bail!(
            "the firmware reported {} vectors of {}; its output was:\n{}",
            run.outcomes.len(),
            job.cases.len(),
            tail(&stdout)
        );
    }
    let counts = std::fs::read_to_string(&counts_path).with_context(|| {
        format!(
            "the instruction counter wrote no `{}` (QEMU's messages: {})",
            counts_path.display(),
            stderr.trim()
        )
    })?;
    let counted = plugin::parse_counts(&counts)
        .and_then(|counts| plugin::attribute(&counts, run.calibration_loops, run.timed_runs))
        .with_context(|| format!("the instruction counts of `{line}` are not usable"))?;
    if run.stack_peak > board.stack_bytes {
        bail!(
            "the detector used {} bytes of stack but board `{}` reserves {}: raise `stack-bytes` in the board file to at least {} and build again",
            run.stack_peak,
            board.name,
            board.stack_bytes,
            run.stack_peak.next_multiple_of(1024)
        );
    }

    let instructions = counted.per_run.unwrap_or(0);
    let latency = Latency {
        runs: run.timed_runs.unwrap_or(0),
        instructions: counted.per_run,
        ..Latency::default()
    };
    let macs = job.manifest.macs;
    Ok(Execution {
        runtime: format!(
            "{} -M {} with the medwasm-icount plugin ({})",
            qemu_version().unwrap_or_else(|| QEMU.to_string()),
            qemu.machine,
            board.description
        ),
        outcomes: run.outcomes,
        latency,
        wasm_pages: None,
        device: Some(Device {
            board: board.name.clone(),
            counting: COUNTING.to_string(),
            instructions,
            init_instructions: counted.init,
            instructions_per_mac: (macs > 0 && instructions > 0)
                .then(|| instructions as f64 / macs as f64),
            flash_bytes: memory.flash(),
            detector_flash_bytes: memory.detector_flash(),
            flash_budget: memory.flash_budget,
            ram_bytes: memory.ram(),
            ram_budget: memory.ram_budget,
            stack_peak_bytes: run.stack_peak,
            stack_reserved_bytes: memory.stack_reserved,
        }),
    })
}

/// The QEMU command line that runs `elf` on `machine` with `work` as its folder.
///
/// No `-icount`: nothing in the firmware reads a clock, and the plugin counts
/// instructions itself (with `-icount`, an instruction that touches a device in the
/// middle of a block makes QEMU run it again, which the plugin would count twice).
pub fn qemu_command(machine: &str, elf: &Path, work: &Path) -> Command {
    let mut cmd = Command::new(QEMU);
    cmd.args(["-machine", machine])
        .args(["-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(elf)
        .current_dir(work);
    cmd
}

/// `qemu-system-arm 7.2.22` from `--version`.
fn qemu_version() -> Option<String> {
    let (major, minor, patch) = qemu_version_numbers()?;
    Some(format!("{QEMU} {major}.{minor}.{patch}"))
}

/// `qemu-system-arm --version` as numbers.
fn qemu_version_numbers() -> Option<(u64, u64, u64)> {
    let out = toolchain::stdout_of(Command::new(QEMU).arg("--version")).ok()?;
    toolchain::parse_version(out.lines().next()?)
}

/// Runs `cmd` under supervision, stops it after [`TIMEOUT`], and returns its stdout;
/// a failure says what the firmware printed.
pub fn run_with_timeout(cmd: &mut Command, line: &str) -> Result<String> {
    let waited = run_supervised(cmd)?;
    checked_stdout(waited, line)
}

/// Runs `cmd` under supervision and stops it after [`TIMEOUT`].
fn run_supervised(cmd: &mut Command) -> Result<Waited> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    Supervised::spawn(cmd)
        .with_context(|| format!("install QEMU with `sudo apt-get install {QEMU}`"))?
        .wait_output(TIMEOUT)
}

/// The stdout of a QEMU run that ended well; otherwise an error with what the
/// firmware printed.
fn checked_stdout(waited: Waited, line: &str) -> Result<String> {
    let stdout = String::from_utf8_lossy(&waited.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&waited.stderr);
    match waited.status {
        None => bail!(
            "`{line}` did not finish in {} s and was stopped (the firmware hung: a fault loops in its handler); it printed:\n{}",
            TIMEOUT.as_secs(),
            tail(&stdout)
        ),
        Some(status) if !status.success() => bail!(
            "`{line}` failed ({status}): {}\nthe firmware printed:\n{}",
            stderr.trim(),
            tail(&stdout)
        ),
        Some(_) => Ok(stdout),
    }
}

/// The last lines of a long output, each cut to a readable width.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(12);
    lines[from..]
        .iter()
        .map(|l| {
            if l.len() > 160 {
                format!("  {}…", &l[..l.floor_char_boundary(160)])
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything the firmware printed, parsed.
#[derive(Debug)]
struct Run {
    outcomes: Vec<Outcome>,
    stack_peak: u64,
    /// Iterations of the calibration loop (two instructions each).
    calibration_loops: u64,
    /// How often the latency loop ran `medwasm_run`; `None` when nothing was timed.
    timed_runs: Option<usize>,
}

/// Parses the firmware's report (the protocol is described in
/// `targets/mcu/firmware/main.rs`).
fn parse(stdout: &str, manifest: &Manifest) -> Result<Run> {
    let mut lines = stdout.lines().peekable();
    let mut outcomes = Vec::new();
    let mut stack_peak = None;
    let mut calibration_loops = None;
    let mut timed_runs = None;
    let mut init_seen = false;
    let mut done = false;
    // Both must be seen: without them the outputs could belong to another detector.
    let mut abi_seen = false;
    let mut io_seen = false;
    let message = |lines: &mut std::iter::Peekable<std::str::Lines<'_>>| -> String {
        match lines.peek().and_then(|l| l.strip_prefix("message ")) {
            Some(m) => {
                let m = m.to_string();
                lines.next();
                m
            }
            None => String::new(),
        }
    };
    while let Some(line) = lines.next() {
        let mut words = line.split_whitespace();
        let tag = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        match tag {
            "medwasm-firmware" => {
                let version: u32 = num(&rest, 0, line)?;
                if version != FIRMWARE_PROTOCOL {
                    bail!(
                        "the firmware reports in version {version} of its protocol and this cargo-medwasm reads version {FIRMWARE_PROTOCOL}; build it again with `cargo medwasm build --target mcu`"
                    );
                }
            }
            "abi" => {
                let abi: i32 = num(&rest, 0, line)?;
                abi_seen = true;
                if abi != ABI_VERSION {
                    bail!(
                        "the firmware's detector speaks ABI version {abi}, this cargo-medwasm {ABI_VERSION}: build it with the matching `medwasm` SDK"
                    );
                }
            }
            "init" => {
                let code: i32 = num(&rest, 0, line)?;
                init_seen = true;
                if code != 0 {
                    let err = DetectorError::Code {
                        code,
                        message: message(&mut lines),
                    };
                    bail!("`medwasm_init` failed on the board: {err}");
                }
            }
            "io" => {
                check_io(&rest, manifest, line)?;
                io_seen = true;
            }
            "vector" => {
                let index: usize = num(&rest, 0, line)?;
                if index != outcomes.len() {
                    bail!("vector {index} reported out of order in `{line}`");
                }
                match rest.get(1).copied() {
                    Some("ok") => {
                        let finding = Finding {
                            score: f32::from_bits(hex(&rest, 2, line)?),
                            label: num(&rest, 3, line)?,
                            alert: num::<i32>(&rest, 4, line)? != 0,
                        };
                        let mut outputs = Vec::with_capacity(manifest.outputs.len());
                        for j in 0..manifest.outputs.len() {
                            let out = lines.next().unwrap_or("");
                            let words: Vec<&str> = out.split_whitespace().collect();
                            if words.first() != Some(&"output")
                                || num::<usize>(&words, 1, out)? != j
                            {
                                bail!("expected output {j} of vector {index}, got `{out}`");
                            }
                            let values = words[2..]
                                .iter()
                                .map(|w| u32::from_str_radix(w, 16).map(f32::from_bits))
                                .collect::<Result<Vec<f32>, _>>()
                                .with_context(|| {
                                    format!("bad f32 bits in output {j} of vector {index}")
                                })?;
                            // An int8 output (`--io int8`) comes as its int8 values.
                            outputs.push(manifest.outputs[j].from_abi(values));
                        }
                        outcomes.push(Ok(Inference { outputs, finding }));
                    }
                    Some("error") => {
                        let code: i32 = num(&rest, 2, line)?;
                        outcomes.push(Err(DetectorError::Code {
                            code,
                            message: message(&mut lines),
                        }));
                    }
                    _ => bail!("cannot read `{line}`"),
                }
            }
            "stack" => stack_peak = Some(num(&rest, 0, line)?),
            "calibration" => calibration_loops = Some(num(&rest, 0, line)?),
            "timing" => {
                let vector: usize = num(&rest, 0, line)?;
                if !matches!(outcomes.get(vector), Some(Ok(_))) {
                    bail!(
                        "the firmware timed vector {vector}, which did not run without an error, in `{line}`"
                    );
                }
                timed_runs = Some(num(&rest, 1, line)?);
            }
            "fatal" => bail!("the firmware stopped: {}", rest.join(" ")),
            "done" => done = true,
            _ => bail!("unexpected line `{line}`"),
        }
    }
    if !done {
        bail!(
            "the firmware stopped before reporting `done`; its output ends with:\n{}",
            tail(stdout)
        );
    }
    if !abi_seen || !io_seen {
        bail!(
            "the firmware reported no `{}` line, so its outputs cannot be matched to this detector; build again with `cargo medwasm build --target mcu`",
            if abi_seen { "io" } else { "abi" }
        );
    }
    if !init_seen {
        bail!("the firmware reported no `medwasm_init`");
    }
    Ok(Run {
        outcomes,
        stack_peak: stack_peak.context("the firmware reported no stack peak")?,
        calibration_loops: calibration_loops.context("the firmware reported no calibration")?,
        timed_runs,
    })
}

/// The firmware's `io` line: input count and lengths, output count and lengths.
fn check_io(words: &[&str], manifest: &Manifest, line: &str) -> Result<()> {
    let mut expected = vec![manifest.inputs.len().to_string()];
    expected.extend(manifest.inputs.iter().map(|t| t.len().to_string()));
    expected.push(manifest.outputs.len().to_string());
    expected.extend(manifest.outputs.iter().map(|t| t.len().to_string()));
    if words != expected {
        bail!(
            "the firmware's tensors (`{line}`) differ from the manifest (`io {}`): build again with `cargo medwasm build --target mcu`",
            expected.join(" ")
        );
    }
    Ok(())
}

fn num<T: std::str::FromStr>(words: &[&str], i: usize, line: &str) -> Result<T> {
    words
        .get(i)
        .and_then(|w| w.parse().ok())
        .with_context(|| format!("cannot read field {i} of `{line}`"))
}

fn hex(words: &[&str], i: usize, line: &str) -> Result<u32> {
    words
        .get(i)
        .and_then(|w| u32::from_str_radix(w, 16).ok())
        .with_context(|| format!("cannot read field {i} of `{line}` as hex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            macs: 4,
            ..Manifest::for_tests(&[("x", &[1, 2])], &[("y", &[2]), ("s", &[1])])
        }
    }

    #[test]
    fn parses_the_firmware_protocol() {
        let out = "medwasm-firmware 3\ncalibration 100000\nabi 2\ninit 0\nio 1 2 2 2 1\n\
            vector 0 ok 3f800000 1 1\noutput 0 3f800000 c0000000\noutput 1 3f800000\n\
            vector 1 error 11\nmessage input 0 element 1 is NaN or infinite\n\
            stack 1234\ntiming 0 10\ndone\n";
        let run = parse(out, &manifest()).unwrap();
        assert_eq!(run.outcomes.len(), 2);
        let first = run.outcomes[0].as_ref().unwrap();
        assert_eq!(first.outputs, vec![vec![1.0, -2.0], vec![1.0]]);
        assert!(first.finding.alert && first.finding.label == 1);
        assert_eq!(
            run.outcomes[1].as_ref().unwrap_err().to_string(),
            "error 11 (`NonFinite`): input 0 element 1 is NaN or infinite"
        );
        assert_eq!(run.stack_peak, 1234);
        assert_eq!(run.calibration_loops, 100_000);
        assert_eq!(run.timed_runs, Some(10));
    }

    #[test]
    fn refuses_a_report_that_does_not_fit() {
        let err = |out: &str| format!("{:#}", parse(out, &manifest()).unwrap_err());
        assert!(err("abi 2\ninit 0\nio 1 3 2 2 1\ndone\n").contains("differ from the manifest"));
        assert!(err("abi 1\n").contains("ABI version 1"));
        assert!(err("init 6\nmessage arena too small\n").contains("`ArenaTooSmall`"));
        assert!(err("abi 2\ninit 0\nstack 4\n").contains("before reporting `done`"));
        assert!(err("fatal cannot open medwasm-vectors.bin\n").contains("cannot open"));
        assert!(err("vector 0 ok 3f800000 0 0\noutput 1 00\n").contains("expected output 0"));
        // A firmware of the SysTick era, benched with `--artifact`.
        assert!(err("medwasm-firmware 1\n").contains("build it again"));
        // Timing a vector that failed would count an error path.
        assert!(err("vector 0 error 11\ntiming 0 5\n").contains("timed vector 0"));
        // Complete but for the line that ties the outputs to this detector.
        let rest = "init 0\nstack 4\ncalibration 100000\ndone\n";
        assert!(err(&format!("abi 2\n{rest}")).contains("no `io` line"));
        assert!(err(&format!("io 1 2 2 2 1\n{rest}")).contains("no `abi` line"));
        let no_init = "abi 2\nio 1 2 2 2 1\nstack 4\ncalibration 100000\ndone\n";
        assert!(err(no_init).contains("no `medwasm_init`"));
    }
}
