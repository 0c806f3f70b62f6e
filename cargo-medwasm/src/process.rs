//! Child processes and scratch folders of the runners: a supervised child lives in
//! its own process group and dies with us, and a scratch folder is removed on every
//! path out of a run.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::toolchain;

/// A scratch folder, removed with its contents when dropped: on success and on every
/// error path alike. Drop the processes that use it first.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh scratch folder for one runner: `target/medwasm/<target>/<what>-<pid>/`,
/// found from an `artifact` in `target/medwasm/<some target>/<folder>/`. The process
/// id keeps two benches sharing a target directory apart.
pub fn scratch_dir(artifact: &Path, target: &str, what: &str) -> Result<Scratch> {
    let base = artifact
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .context("the artifact is not inside `target/medwasm/`; this is a bug in cargo-medwasm")?;
    let dir = base
        .join(target)
        .join(format!("{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    Ok(Scratch(dir))
}

/// A child process in its own process group, stopped (group and all) on drop.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    line: String,
    done: bool,
}

impl Supervised {
    /// Spawns `cmd` with stdin closed, in a new process group on Unix.
    pub fn spawn(cmd: &mut Command) -> Result<Supervised> {
        Self::spawn_with_stdin(cmd, Stdio::null())
    }

    /// [`Supervised::spawn`] with `stdin` as the child's standard input (a file to
    /// stream to it).
    pub fn spawn_with_stdin(cmd: &mut Command, stdin: Stdio) -> Result<Supervised> {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        // Its own process group keeps the terminal's Ctrl-C from reaching the child,
        // and a Ctrl-C or a kill of cargo-medwasm skips `Drop`: have the kernel stop
        // the child when we go, so no headless browser outlives the bench.
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: the closure runs in the forked child before exec and only calls
            // prctl, which is async-signal-safe and touches no memory of ours.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.stdin(stdin);
        let line = toolchain::command_line(cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run `{line}`"))?;
        Ok(Supervised {
            child,
            line,
            done: false,
        })
    }

    /// The command line, for error messages.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self
            .child
            .try_wait()
            .with_context(|| format!("cannot wait for `{}`", self.line))?;
        if status.is_some() {
            self.done = true;
        }
        Ok(status)
    }

    /// Waits for the exit and collects stdout and stderr (set both to piped); after
    /// `timeout` the process group is stopped and the output so far is returned with
    /// no status, so the caller can say what the program printed before it hung.
    pub fn wait_output(mut self, timeout: Duration) -> Result<Waited> {
        let mut stdout = self.child.stdout.take();
        let mut stderr = self.child.stderr.take();
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        });
        let started = Instant::now();
        let status = loop {
            // An error here drops `self`, which stops the process group.
            if let Some(status) = self.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > timeout {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Stopping the group (when it timed out) closes the pipes the readers wait on.
        drop(self);
        Ok(Waited {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }
}

/// How a supervised process ended.
#[derive(Debug)]
pub struct Waited {
    /// The exit status; `None` when it ran past its timeout and was stopped.
    pub status: Option<ExitStatus>,
    /// What it printed on stdout.
    pub stdout: Vec<u8>,
    /// What it printed on stderr.
    pub stderr: Vec<u8>,
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The whole group: Chromium starts helper processes of its own.
        #[cfg(unix)]
        {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill")
                .args(["-TERM", "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
