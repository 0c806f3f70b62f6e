//! The QEMU runner of the `mcu` target: boots the firmware ELF in
//! `qemu-system-arm` with the board's machine, hands it the test vectors over
//! semihosting, and reads back every output (as f32 bits), the stack peak and the
//! SysTick counts of the latency loop.
//!
//! Counting: QEMU runs with `-icount shift=0`, so its virtual clock advances exactly
//! 1 ns per executed instruction, and SysTick (clocked at the board's `clock-hz` from
//! that virtual clock) ticks once every `1e9 / clock-hz` instructions. The count is
//! deterministic and says nothing about cycles: QEMU does not model pipelines, wait
//! states or caches (nor DWT CYCCNT). The firmware also times a loop of a known
//! number of instructions, and the runner refuses figures when that calibration is
//! off by more than 1%.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::artifacts::{BOARD_FILE, VECTORS_FILE, encode_vectors, read_memory};
use super::board::Board;
use super::firmware::TRIPLE;
use crate::manifest::Manifest;
use crate::process::Supervised;
use crate::protocol::{ABI_VERSION, DetectorError, Execution, Inference, Job, Outcome, Progress};
use crate::report::{Device, Finding, Latency};
use crate::toolchain;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-arm";

/// What the report says about the count.
pub const COUNTING: &str = "QEMU -icount shift=0 counts executed instructions, not cycles (SysTick at the board clock; no pipeline, wait-state or cache model)";

/// Longest a firmware run may take before it is killed as hung.
const TIMEOUT: Duration = Duration::from_secs(900);

/// Why the firmware cannot run here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    if which::which(QEMU).is_err() {
        return Some(format!(
            "`{QEMU}` is not installed; install it with `sudo apt-get install qemu-system-arm` (Debian/Ubuntu) or run `.ci/setup`"
        ));
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

    // The vectors go into a folder of their own, QEMU's working directory, where
    // the firmware opens them by a relative name.
    let work = dir.join("bench");
    std::fs::create_dir_all(&work)
        .with_context(|| format!("cannot create `{}`", work.display()))?;
    let cases: Vec<Vec<Vec<f32>>> = job.cases.iter().map(|c| c.inputs.clone()).collect();
    std::fs::write(work.join(VECTORS_FILE), encode_vectors(&cases, job.runs))
        .with_context(|| format!("cannot write the test vectors into `{}`", work.display()))?;

    progress(Progress::Phase {
        verb: "Running",
        len: 1,
    });
    let mut cmd = qemu_command(&qemu.machine, job.artifact, &work);
    let line = toolchain::command_line(&cmd);
    let stdout = run_with_timeout(&mut cmd, &line)?;
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
    let ns_per_tick = 1e9 / board.clock_hz as f64;
    let (expected, ticks) = run.calibration;
    let measured = ticks as f64 * ns_per_tick;
    // Written so that a zero or garbage calibration (NaN ratio) fails too.
    let ratio = measured / expected as f64;
    if expected == 0 || !ratio.is_finite() || (ratio - 1.0).abs() > 0.01 {
        bail!(
            "QEMU's SysTick is not counting instructions: a loop of {expected} instructions took {ticks} ticks ({measured:.0} instructions at {} Hz); check `clock-hz` in the board file and that `{QEMU}` accepts `-icount shift=0`",
            board.clock_hz
        );
    }
    if run.stack_peak > board.stack_bytes {
        bail!(
            "the detector used {} bytes of stack but board `{}` reserves {}: raise `stack-bytes` in the board file to at least {} and build again",
            run.stack_peak,
            board.name,
            board.stack_bytes,
            run.stack_peak.next_multiple_of(1024)
        );
    }

    let (latency, instructions) = match run.timing {
        // Runs of one vector execute the same instructions; the ticks may differ by
        // one from where the runs fall against the tick boundaries, no more.
        Some(t) if t.max > t.min.saturating_add(1) => bail!(
            "the same vector took between {} and {} SysTick ticks over {} runs, so the count is not deterministic; `{QEMU}` must run with `-icount shift=0`",
            t.min,
            t.max,
            t.runs
        ),
        Some(t) => {
            let per_run = (t.sum as f64 * ns_per_tick / t.runs.max(1) as f64).round() as u64;
            (
                Latency {
                    runs: t.runs,
                    instructions: Some(per_run),
                    ..Latency::default()
                },
                per_run,
            )
        }
        None => (Latency::default(), 0),
    };
    let macs = job.manifest.macs;
    Ok(Execution {
        runtime: format!(
            "{} -M {} -icount shift=0 ({})",
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
            init_instructions: (run.init_ticks as f64 * ns_per_tick).round() as u64,
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
pub fn qemu_command(machine: &str, elf: &Path, work: &Path) -> Command {
    let mut cmd = Command::new(QEMU);
    cmd.args(["-machine", machine])
        .args(["-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        // One instruction per virtual nanosecond, and no real time leaking in.
        .args(["-icount", "shift=0,align=off,sleep=off"])
        .arg("-kernel")
        .arg(elf)
        .current_dir(work);
    cmd
}

/// `qemu-system-arm 7.2.22` from `--version`.
fn qemu_version() -> Option<String> {
    let out = toolchain::stdout_of(Command::new(QEMU).arg("--version")).ok()?;
    let (major, minor, patch) = toolchain::parse_version(out.lines().next()?)?;
    Some(format!("{QEMU} {major}.{minor}.{patch}"))
}

/// Runs `cmd` under supervision, stops it after [`TIMEOUT`], and returns its stdout;
/// a failure says what the firmware printed.
pub fn run_with_timeout(cmd: &mut Command, line: &str) -> Result<String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let waited = Supervised::spawn(cmd)
        .with_context(|| format!("install QEMU with `sudo apt-get install {QEMU}`"))?
        .wait_output(TIMEOUT)?;
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

/// The timed loop as the firmware reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    runs: usize,
    min: u64,
    max: u64,
    sum: u64,
}

/// Everything the firmware printed, parsed.
#[derive(Debug)]
struct Run {
    outcomes: Vec<Outcome>,
    stack_peak: u64,
    /// Instructions of the calibration loop and the ticks they took.
    calibration: (u64, u64),
    /// Ticks `medwasm_init` took (it checks the blob's CRC-32 over every byte).
    init_ticks: u64,
    timing: Option<Timing>,
}

/// Parses the firmware's report (the protocol is described in
/// `targets/mcu/firmware/main.rs`).
fn parse(stdout: &str, manifest: &Manifest) -> Result<Run> {
    let mut lines = stdout.lines().peekable();
    let mut outcomes = Vec::new();
    let mut stack_peak = None;
    let mut calibration = None;
    let mut timing = None;
    let mut init_ticks = None;
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
            "medwasm-firmware" => {}
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
                init_ticks = Some(num(&rest, 1, line)?);
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
                            outputs.push(values);
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
            "calibration" => calibration = Some((num(&rest, 0, line)?, num(&rest, 1, line)?)),
            "timing" => {
                timing = Some(Timing {
                    runs: num(&rest, 1, line)?,
                    min: num(&rest, 2, line)?,
                    max: num(&rest, 3, line)?,
                    sum: (u64::from(hex(&rest, 4, line)?) << 32) | u64::from(hex(&rest, 5, line)?),
                });
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
    Ok(Run {
        outcomes,
        stack_peak: stack_peak.context("the firmware reported no stack peak")?,
        calibration: calibration.context("the firmware reported no calibration")?,
        init_ticks: init_ticks.context("the firmware reported no `medwasm_init`")?,
        timing,
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
        let out = "medwasm-firmware 1\nabi 1\ninit 0 42\nio 1 2 2 2 1\n\
            vector 0 ok 3f800000 1 1\noutput 0 3f800000 c0000000\noutput 1 3f800000\n\
            vector 1 error 11\nmessage input 0 element 1 is NaN or infinite\n\
            stack 1234\ncalibration 200000 5000 0\ntiming 0 10 100 101 00000001 000003ed\ndone\n";
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
        assert_eq!(run.init_ticks, 42);
        assert_eq!(run.calibration, (200_000, 5_000));
        assert_eq!(run.timing.unwrap().sum, (1 << 32) + 1005);
    }

    #[test]
    fn refuses_a_report_that_does_not_fit() {
        let err = |out: &str| format!("{:#}", parse(out, &manifest()).unwrap_err());
        assert!(err("abi 1\ninit 0 9\nio 1 3 2 2 1\ndone\n").contains("differ from the manifest"));
        assert!(err("abi 2\n").contains("ABI version 2"));
        assert!(err("init 6 9\nmessage arena too small\n").contains("`ArenaTooSmall`"));
        assert!(err("abi 1\ninit 0 9\nstack 4\n").contains("before reporting `done`"));
        assert!(err("fatal cannot open medwasm-vectors.bin\n").contains("cannot open"));
        assert!(err("vector 0 ok 3f800000 0 0\noutput 1 00\n").contains("expected output 0"));
        // Complete but for the line that ties the outputs to this detector.
        let rest = "init 0 9\nstack 4\ncalibration 200000 5000 0\ndone\n";
        assert!(err(&format!("abi 1\n{rest}")).contains("no `io` line"));
        assert!(err(&format!("io 1 2 2 2 1\n{rest}")).contains("no `abi` line"));
    }
}
