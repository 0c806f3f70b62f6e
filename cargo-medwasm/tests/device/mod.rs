//! `bench --device` against real OpenSSH servers on loopback: Debian's `sshd`,
//! started here on free ports with a throwaway host key, user key and config (never
//! the machine's own), running the portable harness with the device's Node.js. A
//! fleet of two such devices, a closed port, a device without the runtime asked for
//! and a user the server does not know: two benched, and the others reported with
//! what went wrong, nothing left behind on the "devices".

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, need, ok, skip, tool};

/// Keys and client config shared by the test's servers.
struct Keys {
    dir: PathBuf,
}

impl Keys {
    fn new(dir: &Path) -> Option<Keys> {
        let keygen = tool(
            "ssh-keygen",
            "install OpenSSH with `apt-get install openssh-client`",
        )?;
        std::fs::create_dir_all(dir).unwrap();
        for (file, comment) in [
            ("host_key", "medwasm-test-host"),
            ("id", "medwasm-test-user"),
        ] {
            let status = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(dir.join(file))
                .status()
                .unwrap();
            assert!(status.success(), "ssh-keygen failed");
        }
        std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
        Some(Keys {
            dir: dir.to_path_buf(),
        })
    }

    /// The client config `MEDWASM_SSH_CONFIG` points at: this test's key, a known-hosts
    /// file naming its servers, and `TMPDIR` on the "device" set to `device_tmp`, so
    /// what the bench leaves behind there can be seen.
    fn client_config(&self, ports: &[u16], device_tmp: &Path) -> PathBuf {
        let host_key = std::fs::read_to_string(self.dir.join("host_key.pub")).unwrap();
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        let known: String = ports
            .iter()
            .map(|p| format!("[127.0.0.1]:{p} {}\n", host_key.join(" ")))
            .collect();
        std::fs::write(self.dir.join("known_hosts"), known).unwrap();
        let config = self.dir.join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  IdentityFile {id}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  \
                 StrictHostKeyChecking yes\n  SetEnv TMPDIR={tmp}\n  LogLevel ERROR\n",
                id = self.dir.join("id").display(),
                kh = self.dir.join("known_hosts").display(),
                tmp = device_tmp.display()
            ),
        )
        .unwrap();
        config
    }
}

/// An `sshd` on 127.0.0.1, stopped when dropped.
struct Sshd {
    child: Child,
    port: u16,
}

impl Sshd {
    fn start(sshd: &Path, keys: &Keys, name: &str) -> Sshd {
        let port = free_port();
        let dir = &keys.dir;
        let config = dir.join(format!("{name}.sshd_config"));
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PidFile {pid}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 AcceptEnv TMPDIR\n",
                hk = dir.join("host_key").display(),
                ak = dir.join("authorized_keys").display(),
                pid = dir.join(format!("{name}.pid")).display(),
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Sshd { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "sshd exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sshd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's `sshd` (not on a user's PATH), or `None` after saying so.
fn sshd_program() -> Option<PathBuf> {
    let path = which::which("sshd")
        .ok()
        .or_else(|| Some(PathBuf::from("/usr/sbin/sshd")).filter(|p| p.is_file()));
    if path.is_none() {
        skip("`sshd` is not installed; `apt-get install openssh-server` (`.ci/setup` does)");
    }
    path
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn fleet_bench_over_ssh_reports_benched_and_unreachable_devices() {
    let sshd = need!(sshd_program());
    need!(tool(
        "ssh",
        "install OpenSSH with `apt-get install openssh-client`"
    ));
    need!(tool("node", "install Node.js 20 or newer"));
    // sshd run by root wants its privilege separation folder.
    if user() == "root" {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let keys = need!(Keys::new(&tmp.path().join("ssh")));
    let a = Sshd::start(&sshd, &keys, "a");
    let b = Sshd::start(&sshd, &keys, "b");
    let closed = free_port();
    let device_tmp = tmp.path().join("device-tmp");
    std::fs::create_dir_all(&device_tmp).unwrap();
    let config = keys.client_config(&[a.port, b.port], &device_tmp);
    // The "device" sees the TMPDIR given to it, so the check for leftovers below
    // looks where the bench's temporary folders go.
    let echo = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["-p", &a.port.to_string(), &format!("{}@127.0.0.1", user())])
        .arg("printf %s \"$TMPDIR\"")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&echo.stdout),
        device_tmp.to_string_lossy(),
        "{}",
        String::from_utf8_lossy(&echo.stderr)
    );

    ok(
        tmp.path(),
        &["new", "vitals-dev", "--template", "vitals-anomaly"],
    );
    let project = tmp.path().join("vitals-dev");
    let me = user();
    // WasmEdge is asked for on a device that has none, unless this machine has it.
    let has_wasmedge = which::which("wasmedge").is_ok();
    let fleet = format!(
        r#"
[[device]]
name = "pi-a"
address = "ssh://{me}@127.0.0.1:{a}"
runtime = "node"

[[device]]
name = "pi-b"
address = "{me}@127.0.0.1:{b}"

[[device]]
name = "gone"
address = "ssh://{me}@127.0.0.1:{closed}"

[[device]]
name = "stranger"
address = "ssh://medwasm-no-such-user@127.0.0.1:{a}"
{no_runtime}"#,
        a = a.port,
        b = b.port,
        no_runtime = if has_wasmedge {
            String::new()
        } else {
            format!(
                "\n[[device]]\nname = \"no-wasmedge\"\naddress = \"ssh://{me}@127.0.0.1:{}\"\nruntime = \"wasmedge\"\n",
                a.port
            )
        },
    );
    let fleet_file = tmp.path().join("fleet.toml");
    std::fs::write(&fleet_file, fleet).unwrap();
    let report_dir = tmp.path().join("report");

    let started = Instant::now();
    let out = super::cli_env(
        &project,
        &[
            "bench",
            "--target",
            "wasmtime",
            "--devices",
            fleet_file.to_str().unwrap(),
            "--runtime",
            "node",
            "--json",
            "--runs",
            "30",
            "--report",
            report_dir.to_str().unwrap(),
        ],
        &[("MEDWASM_SSH_CONFIG", config.to_str().unwrap())],
    );
    eprintln!("fleet bench took {:.1} s", started.elapsed().as_secs_f64());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Everything that ran agrees, but not every device could be benched: exit 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let failed = if has_wasmedge { 2 } else { 3 };
    assert!(
        stderr.contains(&format!("{failed} targets could not be benched")),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| -> &Value {
        report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == name)
            .unwrap_or_else(|| panic!("no row `{name}`: {report:#}"))
    };
    assert_eq!(row("wasmtime")["passed"], true, "{report:#}");
    let arch = std::env::consts::ARCH;
    for name in ["pi-a", "pi-b"] {
        let t = row(name);
        assert_eq!(t["passed"], true, "{name}: {t:#}");
        super::assert_template_vectors(t);
        let runtime = t["runtime"].as_str().unwrap();
        // The device's runtime, its version, uname -m and CPU.
        assert!(
            runtime.starts_with("node v") && runtime.contains("harness") && runtime.contains(arch),
            "{runtime}"
        );
        assert_eq!(t["latency"]["runs"], 30, "{name}");
        assert!(t["latency"]["median_us"].as_f64().unwrap() > 0.0);
        assert!(t.get("failure").is_none(), "{t:#}");
    }
    let failure = |name: &str| -> (String, String) {
        let f = &row(name)["failure"];
        (
            f["kind"].as_str().unwrap_or_default().to_string(),
            f["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (kind, message) = failure("gone");
    assert_eq!(kind, "unreachable", "{message}");
    assert!(
        message.contains("device `gone`") && message.contains("connection refused"),
        "{message}"
    );
    let (kind, message) = failure("stranger");
    assert_eq!(kind, "failed", "{message}");
    assert!(message.contains("authentication failed"), "{message}");
    if !has_wasmedge {
        let (kind, message) = failure("no-wasmedge");
        assert_eq!(kind, "failed", "{message}");
        assert!(
            message.contains("`wasmedge` is not on the PATH of a non-interactive ssh login"),
            "{message}"
        );
    }
    // Nothing left behind on the devices: every temporary folder went, also on the
    // device whose runtime was missing.
    let left: Vec<_> = std::fs::read_dir(&device_tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left on the device: {left:?}");
    // The HTML report has a row per device.
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    for name in ["pi-a", "pi-b", "gone", "stranger"] {
        assert!(html.contains(&format!("<b>{name}</b>")), "{name}");
    }
    assert!(html.contains("unreachable"));
}

#[test]
fn bad_device_addresses_and_fleet_files_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &["new", "vitals-addr", "--template", "vitals-anomaly"],
    );
    let project = tmp.path().join("vitals-addr");
    let refused = |args: &[&str], why: &str| {
        let out = super::cli(&project, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(why), "{err}");
    };
    refused(
        &["bench", "--device", "ssh://pi@host:99999"],
        "write it as `ssh://user@host:port`",
    );
    // Never an option for ssh.
    refused(
        &["bench", "--device=-oProxyCommand=touch"],
        "is not a device address",
    );
    let fleet = tmp.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[[device]]\nname = \"a\"\naddress = \"ssh://x@127.0.0.1:1\"\n[[device]]\nname = \"a\"\naddress = \"ssh://x@127.0.0.1:2\"\n",
    )
    .unwrap();
    refused(
        &["bench", "--devices", fleet.to_str().unwrap()],
        "names two devices `a`",
    );
    std::fs::write(&fleet, "[[device]]\nname = \"a\"\nadress = \"typo\"\n").unwrap();
    refused(
        &["bench", "--devices", fleet.to_str().unwrap()],
        "is not a fleet file",
    );
}
