//! The system `ssh`, as the device bench uses it: batch mode (never a
//! password prompt), a connect timeout, the user's own config, agent and keys, and
//! errors that name the step and the device and say what went wrong (refused,
//! unreachable, authentication, host key, timeout).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::process::Supervised;
use crate::toolchain;

/// Seconds `ssh` waits for a connection before giving up.
const CONNECT_TIMEOUT_S: u32 = 10;

/// `user@host:port` of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Login name, when given (else the ssh config's or the local user).
    pub user: Option<String>,
    /// Host name or address.
    pub host: String,
    /// Port, when given (else 22 or the ssh config's).
    pub port: Option<u16>,
}

impl Address {
    /// Parses `ssh://user@host:port`, `user@host:port`, `host` …
    pub fn parse(text: &str) -> Result<Address> {
        let bad = || {
            format!(
                "`{text}` is not a device address; write it as `ssh://user@host:port` (user and port optional)"
            )
        };
        let rest = text.strip_prefix("ssh://").unwrap_or(text);
        if rest.contains("://") || rest.contains('/') || rest.is_empty() {
            bail!(bad());
        }
        let (user, host_port) = match rest.rsplit_once('@') {
            Some((user, host)) if !user.is_empty() => (Some(user.to_string()), host),
            Some(_) => bail!(bad()),
            None => (None, rest),
        };
        // `[::1]:22` for IPv6 with a port.
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6.split_once(']').with_context(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().ok().with_context(bad)?),
                None if after.is_empty() => None,
                None => bail!(bad()),
            };
            (host.to_string(), port)
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (
                    host.to_string(),
                    Some(port.parse::<u16>().ok().with_context(bad)?),
                ),
                None => (host_port.to_string(), None),
            }
        };
        let plain = |s: &str| {
            !s.is_empty()
                && !s.starts_with('-')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
        };
        if !plain(&host) || !user.as_deref().is_none_or(plain) {
            bail!(bad());
        }
        Ok(Address { user, host, port })
    }

    /// `user@host` (or `host`), what `ssh` takes.
    fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.bracketed()),
            None => self.bracketed(),
        }
    }

    fn bracketed(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.destination())?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Quotes `word` for the device's POSIX shell.
pub fn quote(word: &str) -> String {
    toolchain::shell_quote(std::ffi::OsStr::new(word))
}

/// `ssh` to one device.
#[derive(Debug)]
pub struct Session {
    address: Address,
    name: String,
    /// An ssh config file to use instead of the user's (`MEDWASM_SSH_CONFIG`): for
    /// scripts and tests that must not touch `~/.ssh`.
    config: Option<PathBuf>,
}

impl Session {
    /// A session with the device `name` at `address`.
    pub fn new(address: &Address, name: &str) -> Session {
        Session {
            address: address.clone(),
            name: name.to_string(),
            config: std::env::var_os("MEDWASM_SSH_CONFIG").map(PathBuf::from),
        }
    }

    /// The options (and port) every `ssh` call takes.
    fn options(&self, cmd: &mut Command) {
        if let Some(config) = &self.config {
            cmd.arg("-F").arg(config);
        }
        cmd.args(["-o", "BatchMode=yes"])
            .args(["-o", &format!("ConnectTimeout={CONNECT_TIMEOUT_S}")])
            .args(["-o", "ServerAliveInterval=15"]);
        if let Some(port) = self.address.port {
            cmd.arg("-p").arg(port.to_string());
        }
    }

    /// Runs `command` on the device and returns its stdout; `step` names it in errors.
    pub fn run(&self, step: &str, command: &str, timeout: Duration) -> Result<String> {
        let mut cmd = Command::new("ssh");
        self.options(&mut cmd);
        cmd.arg(self.address.destination()).arg("--").arg(command);
        self.finish(step, cmd, timeout)
    }

    /// Copies the local file `from` to `to` on the device, streamed through `ssh` to
    /// `cat`: it needs no SFTP server or `scp` on the device (small devices and
    /// Dropbear often have neither), only a shell.
    pub fn upload(&self, from: &Path, to: &str, timeout: Duration) -> Result<()> {
        let file = std::fs::File::open(from)
            .with_context(|| format!("cannot read `{}`", from.display()))?;
        let mut cmd = Command::new("ssh");
        self.options(&mut cmd);
        cmd.arg(self.address.destination())
            .arg("--")
            .arg(format!("cat > {}", quote(to)));
        self.finish_with("copy the harness", cmd, Stdio::from(file), timeout)
            .map(|_| ())
    }

    fn finish(&self, step: &str, cmd: Command, timeout: Duration) -> Result<String> {
        self.finish_with(step, cmd, Stdio::null(), timeout)
    }

    fn finish_with(
        &self,
        step: &str,
        mut cmd: Command,
        stdin: Stdio,
        timeout: Duration,
    ) -> Result<String> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let line = toolchain::command_line(&cmd);
        let program = cmd.get_program().to_string_lossy().into_owned();
        let waited = Supervised::spawn_with_stdin(&mut cmd, stdin)
            .with_context(|| format!("cannot run `{program}`: install OpenSSH's client (`apt-get install openssh-client`)"))?
            .wait_output(timeout)?;
        let stderr = String::from_utf8_lossy(&waited.stderr).trim().to_string();
        let Some(status) = waited.status else {
            bail!(
                "device `{}`: {step}: no answer within {} s, stopped (`{line}`)",
                self.name,
                timeout.as_secs()
            );
        };
        if status.success() {
            return Ok(String::from_utf8_lossy(&waited.stdout).into_owned());
        }
        // ssh reports its own failures with 255; the remote command's status is
        // anything else.
        if status.code() == Some(255) {
            bail!(
                "device `{}`: {step}: {}",
                self.name,
                connection_failure(&stderr)
            );
        }
        bail!(
            "device `{}`: {step} failed ({status}): {}",
            self.name,
            if stderr.is_empty() {
                "no message".to_string()
            } else {
                stderr
            }
        )
    }
}

/// What an `ssh` failure means, from its message, with what to do.
fn connection_failure(stderr: &str) -> String {
    let lower = stderr.to_lowercase();
    let why = if lower.contains("connection refused") {
        "unreachable: connection refused (nothing listens on that port; check the address and that sshd runs)"
    } else if lower.contains("timed out") {
        "unreachable: the connection timed out (check the address, the network and the firewall)"
    } else if lower.contains("could not resolve") || lower.contains("name or service not known") {
        "unreachable: the host name does not resolve"
    } else if lower.contains("no route to host") || lower.contains("network is unreachable") {
        "unreachable: no route to the host"
    } else if lower.contains("host key verification failed")
        || lower.contains("remote host identification has changed")
    {
        "the device's host key is unknown or changed: connect once with `ssh` to check and accept it"
    } else if lower.contains("permission denied") {
        "authentication failed: load a key into your ssh agent or name one in ~/.ssh/config (batch mode never asks for a password)"
    } else {
        "ssh failed"
    };
    if stderr.is_empty() {
        why.to_string()
    } else {
        format!("{why} — ssh said: {stderr}")
    }
}

/// Whether an error of [`Session`] says the device could not be reached at all.
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.to_string().contains(": unreachable: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print() {
        let a = Address::parse("ssh://pi@10.0.0.2:2222").unwrap();
        assert_eq!(
            (a.user.as_deref(), a.host.as_str(), a.port),
            (Some("pi"), "10.0.0.2", Some(2222))
        );
        assert_eq!(a.to_string(), "pi@10.0.0.2:2222");
        assert_eq!(Address::parse("gw").unwrap().to_string(), "gw");
        let v6 = Address::parse("ssh://root@[::1]:22").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", Some(22)));
        assert_eq!(v6.destination(), "root@[::1]");
        for bad in [
            "",
            "http://x",
            "ssh://@host",
            "host:port",
            "host:70000",
            "-oProxyCommand=x",
            "user@-host",
            "ssh://a/b",
            "a b",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn failures_say_what_happened() {
        assert!(
            connection_failure("ssh: connect to host 127.0.0.1 port 1: Connection refused")
                .starts_with("unreachable: connection refused")
        );
        assert!(
            connection_failure("user@h: Permission denied (publickey).")
                .contains("authentication failed")
        );
        assert!(connection_failure("Host key verification failed.").contains("host key"));
        assert!(connection_failure("").contains("ssh failed"));
        let err = anyhow::anyhow!("device `pi`: probe the device: unreachable: connection refused");
        assert!(is_unreachable(&err));
    }
}
