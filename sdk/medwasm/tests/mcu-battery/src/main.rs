//! The SDK's kernel battery on a Cortex-M4/M7 in QEMU: runs blobs the host test
//! built, with the kernels this target compiles (the DSP ones), compares each
//! output with the one the host computed with the reference kernels, and counts the
//! instructions of every run. Built and driven by `tests/all/mcu.rs`; no
//! dependency but the SDK (a vector table, a reset handler and semihosting of its
//! own), so it builds offline from the workspace's lock.
//!
//! The cases come in at compile time, from the file `MEDWASM_MCU_CASES` names
//! (little-endian): `MWKC`, u32 version 1, u32 case count, u32 0; then per case,
//! each part starting 16-aligned: u32 blob length, input length, expected output
//! length (bytes), 0; the blob; the input bytes (graph input 0); the expected bytes
//! (graph output 0).
//!
//! The DSP blocks' cases come from the file `MEDWASM_MCU_DSP` names: records of
//! u32 kind, u32 payload words, payload (format in `tests/all/dsp.rs`,
//! `mcu_bundle`). Each block runs on this target and the CRC-32 of its output
//! bytes is reported as `dsp <i> <crc>` (or `dsp <i> error <what>`); the host
//! compares it with its own output's, which its battery checks bit for bit
//! against the goldens in `conformance/dsp/`.
//!
//! Output (semihosting stdout), one fact per line: `medwasm-mcu-battery 1`,
//! `kernels <name>` (the int8 sums this build runs: `dsp`, or `reference` with
//! `--cfg medwasm_reference_kernels`), `calibration <loops>`, then per case `case <i> ok`, `case <i> mismatch <byte>
//! <got> <want>` or `case <i> error <stage> <code>`, and `done <passed>
//! <failed>`; then QEMU exits with 0 when every case passed.
//!
//! Counting: the same markers as `cargo medwasm build --target mcu`'s firmware
//! (`targets/mcu/firmware/main.rs`) for the same plugin
//! (`targets/mcu/qemu-plugin/lib.rs`): section 1 counts nothing (2), section 2 a
//! loop of `2 × loops` instructions, then one section per case that reached its
//! run (`ok` and `mismatch` lines): `bl run_case` on the prepared runtime; then
//! one section per DSP record that ran: the block's work on the record's input
//! (not its set-up, except for record 13, which counts the design itself).

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::fmt::Write as _;
use core::mem::MaybeUninit;

use medwasm::kernels::int8::acc::Sums;
use medwasm::kernels::int8::fast::Best;
use medwasm::{Model, PlanArrays, Runtime, View, ViewMut};

/// Arena for every case (the host checks each case fits).
const ARENA_BYTES: usize = 512 * 1024;
/// Plan storage for every case (the host checks each case fits).
const STEPS: usize = 64;
const OPERANDS: usize = 512;
/// Iterations of the two-instruction calibration loop.
const CALIBRATION_LOOPS: u32 = 10_000;

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static CASES: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("MEDWASM_MCU_CASES")));

static DSP: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("MEDWASM_MCU_DSP")));

/// The DSP cases' input signal and their output (the host checks they fit).
const SIGNAL: usize = 4096;
static mut DSP_INPUT: [f32; SIGNAL] = [0.0; SIGNAL];
static mut DSP_OUTPUT: [f32; SIGNAL] = [0.0; SIGNAL];

static mut ARENA: Aligned<[MaybeUninit<u8>; ARENA_BYTES]> =
    Aligned([MaybeUninit::uninit(); ARENA_BYTES]);
static mut PLAN: PlanArrays<STEPS, OPERANDS> = PlanArrays::new();

// Reset: zero `.bss`, copy `.data`, enable the FPU (CP10, CP11: the hybrid kernels
// compute in f32), then Rust.
global_asm!(
    ".section .text.reset,\"ax\",%progbits",
    ".global reset",
    ".type reset, %function",
    ".thumb_func",
    "reset:",
    "ldr r0, =_sbss",
    "ldr r1, =_ebss",
    "movs r2, #0",
    "1:",
    "cmp r0, r1",
    "bhs 2f",
    "str r2, [r0], #4",
    "b 1b",
    "2:",
    "ldr r0, =_sdata",
    "ldr r1, =_edata",
    "ldr r2, =_sidata",
    "3:",
    "cmp r0, r1",
    "bhs 4f",
    "ldr r3, [r2], #4",
    "str r3, [r0], #4",
    "b 3b",
    "4:",
    "ldr r0, =0xE000ED88",
    "ldr r1, [r0]",
    "orr r1, r1, #0xF00000",
    "str r1, [r0]",
    "dsb",
    "isb",
    "bl battery_main",
    "udf #0",
    ".size reset, . - reset",
    // The two markers of a counted section, one instruction each.
    ".section .text.medwasm_firmware_count,\"ax\",%progbits",
    ".p2align 1",
    ".global medwasm_firmware_count_begin",
    ".type medwasm_firmware_count_begin, %function",
    ".thumb_func",
    "medwasm_firmware_count_begin:",
    "bx lr",
    ".size medwasm_firmware_count_begin, . - medwasm_firmware_count_begin",
    ".global medwasm_firmware_count_end",
    ".type medwasm_firmware_count_end, %function",
    ".thumb_func",
    "medwasm_firmware_count_end:",
    "bx lr",
    ".size medwasm_firmware_count_end, . - medwasm_firmware_count_end",
);

unsafe extern "C" {
    fn reset();
    fn medwasm_firmware_count_begin();
    fn medwasm_firmware_count_end();
}

/// A fault stops the run with a failure.
extern "C" fn fault() {
    line(format_args!("fault"));
    exit(false);
}

type Handler = unsafe extern "C" fn();

/// Reset and the system exceptions (the stack pointer comes first, from `link.x`).
#[unsafe(link_section = ".vectors.handlers")]
#[used]
static HANDLERS: [Option<Handler>; 15] = [
    Some(reset),
    Some(fault),
    Some(fault),
    Some(fault),
    Some(fault),
    Some(fault),
    None,
    None,
    None,
    None,
    Some(fault),
    Some(fault),
    None,
    Some(fault),
    Some(fault),
];

/// A semihosting call.
fn semihost(op: u32, arg: usize) -> u32 {
    let r;
    // SAFETY: `bkpt 0xab` is the semihosting trap; QEMU reads `r0`, `r1` and the
    // memory `arg` points to, and writes `r0`.
    unsafe { asm!("bkpt #0xab", inout("r0") op => r, in("r1") arg, options(nostack)) };
    r
}

/// Ends the QEMU run: status 0 (`ADP_Stopped_ApplicationExit`) or 1.
fn exit(ok: bool) -> ! {
    semihost(0x18, if ok { 0x20026 } else { 0x20023 });
    loop {}
}

/// One output line, written in one semihosting call (`SYS_WRITE0`).
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() - 2 {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

fn line(args: core::fmt::Arguments<'_>) {
    let mut l = Line {
        buf: [0; 160],
        len: 0,
    };
    let _ = l.write_fmt(args);
    l.buf[l.len] = b'\n';
    l.buf[l.len + 1] = 0;
    semihost(0x04, l.buf.as_ptr() as usize);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(at) => line(format_args!("panic {}:{}", at.file(), at.line())),
        None => line(format_args!("panic")),
    }
    exit(false)
}

/// Calls `run_case(rt)` as a counted section and returns its result.
fn counted_run(rt: &mut Runtime<'static, 'static>) -> i32 {
    let code: i32;
    // SAFETY: the markers change no register but `pc`; `run_case` follows the C ABI
    // (AAPCS), so it may change r0-r3, r12, lr, s0-s15 and the flags, all declared.
    unsafe {
        asm!(
            "bl {begin}",
            "bl {f}",
            "bl {end}",
            begin = sym medwasm_firmware_count_begin,
            f = sym run_case,
            end = sym medwasm_firmware_count_end,
            inlateout("r0") rt as *mut Runtime<'static, 'static> => code,
            out("r1") _, out("r2") _, out("r3") _, out("r12") _, out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
        );
    }
    code
}

/// One inference: 0, or the error's code.
extern "C" fn run_case(rt: *mut Runtime<'static, 'static>) -> i32 {
    // SAFETY: `counted_run` passes its exclusive borrow.
    match unsafe { &mut *rt }.run() {
        Ok(()) => 0,
        Err(e) => e.code() as i32,
    }
}

/// Sections 1 and 2 of the counting protocol.
fn calibrate() {
    // SAFETY: the markers change no register but `pc`, `bl` only `lr`; the loop its
    // counter and the flags.
    unsafe {
        asm!("bl {begin}", "bl {end}",
             begin = sym medwasm_firmware_count_begin,
             end = sym medwasm_firmware_count_end, out("lr") _);
        asm!(
            "bl {begin}",
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            "bl {end}",
            begin = sym medwasm_firmware_count_begin,
            end = sym medwasm_firmware_count_end,
            n = inout(reg) CALIBRATION_LOOPS => _,
            out("lr") _,
        );
    }
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn align16(v: usize) -> usize {
    (v + 15) & !15
}

/// Runs one case; true when its output is the expected one.
fn case(i: usize, blob: &'static [u8], input: &[u8], want: &[u8]) -> bool {
    let model = match Model::load(blob) {
        Ok(m) => m,
        Err(e) => {
            line(format_args!("case {i} error load {}", e.code()));
            return false;
        }
    };
    // SAFETY: one case at a time; the previous case's runtime, the only other
    // borrower of the arena and the plan, is gone.
    let (arena, plan) = unsafe {
        let arena = &mut *core::ptr::addr_of_mut!(ARENA.0);
        let arena = core::slice::from_raw_parts_mut(arena.as_mut_ptr().cast::<u8>(), ARENA_BYTES);
        (arena, &mut *core::ptr::addr_of_mut!(PLAN))
    };
    let mut rt = match Runtime::new(model, arena, plan.storage()) {
        Ok(rt) => rt,
        Err(e) => {
            line(format_args!("case {i} error init {}", e.code()));
            return false;
        }
    };
    match rt.input_view_mut(0) {
        Ok(ViewMut::I8(dst)) if dst.len() == input.len() => {
            for (d, &s) in dst.iter_mut().zip(input) {
                *d = s as i8;
            }
        }
        Ok(ViewMut::F32(dst)) if dst.len() * 4 == input.len() => {
            for (d, s) in dst.iter_mut().zip(input.chunks_exact(4)) {
                *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
        _ => {
            line(format_args!("case {i} error input 0"));
            return false;
        }
    }
    let code = counted_run(&mut rt);
    if code != 0 {
        line(format_args!("case {i} error run {code}"));
        return false;
    }
    let got: &[u8] = match rt.output_view(0) {
        Ok(View::I8(v)) => {
            // SAFETY: i8 and u8 have the same layout.
            unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len()) }
        }
        Ok(View::F32(v)) => {
            // SAFETY: any f32 is 4 initialized bytes; little-endian target.
            unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len() * 4) }
        }
        _ => {
            line(format_args!("case {i} error output 0"));
            return false;
        }
    };
    if got.len() != want.len() {
        line(format_args!("case {i} error length {}", got.len()));
        return false;
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None => {
            line(format_args!("case {i} ok"));
            true
        }
        Some(k) => {
            line(format_args!("case {i} mismatch {k} {} {}", got[k], want[k]));
            false
        }
    }
}

#[unsafe(no_mangle)]
extern "C" fn battery_main() -> ! {
    line(format_args!("medwasm-mcu-battery 1"));
    line(format_args!("kernels {}", <Best as Sums>::NAME));
    line(format_args!("calibration {CALIBRATION_LOOPS}"));
    calibrate();
    let b: &'static [u8] = &CASES.0;
    if b.len() < 16 || &b[..4] != b"MWKC" || u32_at(b, 4) != 1 {
        line(format_args!("error cases"));
        exit(false);
    }
    let count = u32_at(b, 8);
    let (mut at, mut passed, mut failed) = (16, 0, 0);
    for i in 0..count {
        let (blob_len, in_len, out_len) = (u32_at(b, at), u32_at(b, at + 4), u32_at(b, at + 8));
        at += 16;
        let blob = &b[at..at + blob_len];
        at = align16(at + blob_len);
        let input = &b[at..at + in_len];
        at = align16(at + in_len);
        let want = &b[at..at + out_len];
        at = align16(at + out_len);
        if case(i, blob, input, want) {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    let (dsp_passed, dsp_failed) = dsp_cases();
    passed += dsp_passed;
    failed += dsp_failed;
    line(format_args!("done {passed} {failed}"));
    exit(failed == 0)
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(b, at) as u32)
}

fn f64_at(b: &[u8], at: usize) -> f64 {
    f64::from_bits(u32_at(b, at) as u64 | (u32_at(b, at + 4) as u64) << 32)
}

fn output_crc(v: &[f32]) -> u32 {
    // SAFETY: any f32 is 4 initialized bytes; little-endian target.
    medwasm::crc32(unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len() * 4) })
}

fn butter<const S: usize>(spec: &dsp::Butterworth, y: &mut [f32]) -> Result<(), dsp::DspError> {
    let mut f = dsp::SosFilter::<S>::butterworth(spec)?;
    counted(|| {
        f.process(y);
        core::hint::black_box(&*y);
    });
    Ok(())
}

fn fir<const N: usize>(taps: &[f32], y: &mut [f32]) -> Result<(), dsp::DspError> {
    let mut f = dsp::Fir::<N>::from_slice(taps)?;
    counted(|| {
        f.process(y);
        core::hint::black_box(&*y);
    });
    Ok(())
}

fn moving_average<const N: usize>(y: &mut [f32]) {
    let mut m = dsp::MovingAverage::<N>::new();
    counted(|| {
        m.process(y);
        core::hint::black_box(&*y);
    });
}

/// Frames of `W` every `hop`, the input pushed `chunk` samples at a time, written
/// one after the other into `out`; the number of values written.
fn windows<const W: usize>(x: &[f32], hop: usize, chunk: usize, out: &mut [f32]) -> Option<usize> {
    let mut w = dsp::Windows::<W>::new(hop).ok()?;
    let mut n = 0;
    counted(|| {
        for part in x.chunks(chunk) {
            w.push(part, |start, frame| {
                if start != (n / W * hop) as u64 || n + W > out.len() {
                    return Err(());
                }
                out[n..n + W].copy_from_slice(frame);
                n += W;
                Ok(())
            })
            .ok()?;
        }
        Some(n)
    })
}

use medwasm::dsp;

/// Runs `f` as a counted section (the markers only: no `bl` of its own), its
/// result forced to exist before the end marker.
fn counted<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the markers are `bx lr` leaf functions that change nothing.
    unsafe { medwasm_firmware_count_begin() };
    let r = core::hint::black_box(f());
    // SAFETY: as above.
    unsafe { medwasm_firmware_count_end() };
    r
}

fn moving_median<const N: usize>(y: &mut [f32]) {
    let mut m = dsp::MovingMedian::<N>::new();
    counted(|| {
        m.process(y);
        core::hint::black_box(&*y);
    });
}

/// Record 11 (decimate, in chunks of 7) or 12 (interpolate) with `N` taps from
/// `p`; the outputs go to `out`, their count is returned.
fn resample<const N: usize>(kind: usize, p: &[u8], x: &[f32], out: &mut [f32]) -> Option<usize> {
    let factor = u32_at(p, 0);
    let mut taps = [0.0f32; N];
    for (k, t) in taps.iter_mut().enumerate() {
        *t = f32_at(p, 8 + 4 * k);
    }
    if kind == 11 {
        let mut d = dsp::Decimator::<N>::new(&taps, factor).ok()?;
        counted(|| {
            let mut n = 0;
            for chunk in x.chunks(7) {
                n += d.process(chunk, out.get_mut(n..)?).ok()?;
            }
            Some(n)
        })
    } else {
        let mut i = dsp::Interpolator::<N>::new(&taps, factor).ok()?;
        counted(|| i.process(x, out).ok())
    }
}

/// The FFT of the first `N` samples, the periodogram and the band powers of
/// record 9, written one after the other into `out`; the number of values.
fn spectrum<const N: usize>(x: &[f32], p: &[u8], words: usize, out: &mut [f32]) -> Option<usize> {
    let x: &[f32; N] = x.get(..N)?.try_into().ok()?;
    let (mut re, mut im) = (*x, [0.0f32; N]);
    dsp::Fft::<N>::new().transform(&mut re, &mut im);
    let bins = dsp::Periodogram::<N>::BINS;
    let bands = (words - 4) / 4;
    if 2 * N + bins + bands > out.len() {
        return None;
    }
    out[..N].copy_from_slice(&re);
    out[N..2 * N].copy_from_slice(&im);
    let window = if u32_at(p, 8) == 1 {
        dsp::Window::Hann
    } else {
        dsp::Window::Rectangular
    };
    let pg = dsp::Periodogram::<N>::new(f32_at(p, 4), window, u32_at(p, 12) == 1).ok()?;
    let (psd, rest) = out[2 * N..].split_at_mut(bins);
    // Counted: the density and the band powers (the FFT is inside the density).
    counted(|| {
        pg.psd(x, (&mut re, &mut im), psd).ok()?;
        for (b, slot) in rest[..bands].iter_mut().enumerate() {
            let at = 16 + 16 * b;
            *slot = pg.band_power(psd, f64_at(p, at), f64_at(p, at + 8)).ok()?;
        }
        Some(())
    })?;
    Some(2 * N + bins + bands)
}

/// Runs the DSP records; (passed, failed) as reported lines.
fn dsp_cases() -> (u32, u32) {
    let b: &'static [u8] = &DSP.0;
    // SAFETY: the only references to the two buffers, taken once.
    let (input, output) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(DSP_INPUT),
            &mut *core::ptr::addr_of_mut!(DSP_OUTPUT),
        )
    };
    let (mut at, mut i, mut len) = (0, 0, 0);
    let (mut passed, mut failed) = (0, 0);
    while at + 8 <= b.len() {
        let (kind, words) = (u32_at(b, at), u32_at(b, at + 4));
        let p = &b[at + 8..at + 8 + 4 * words];
        at += 8 + 4 * words;
        if kind == 0 {
            len = words.min(SIGNAL);
            for (k, v) in input[..len].iter_mut().enumerate() {
                *v = f32_at(p, 4 * k);
            }
            continue;
        }
        let y = &mut output[..len];
        y.copy_from_slice(&input[..len]);
        let done: Result<usize, &str> = match kind {
            1 => {
                let cut = (f64_at(p, 12), f64_at(p, 20));
                let band = match u32_at(p, 0) {
                    0 => dsp::Band::LowPass { cutoff_hz: cut.0 },
                    1 => dsp::Band::HighPass { cutoff_hz: cut.0 },
                    _ => dsp::Band::BandPass {
                        low_hz: cut.0,
                        high_hz: cut.1,
                    },
                };
                let spec = dsp::Butterworth {
                    band,
                    order: u32_at(p, 4),
                    fs_hz: f64_at(p, 28),
                };
                let r = match u32_at(p, 8) {
                    1 => butter::<1>(&spec, y),
                    2 => butter::<2>(&spec, y),
                    3 => butter::<3>(&spec, y),
                    4 => butter::<4>(&spec, y),
                    _ => Err(dsp::DspError::Length {
                        what: "sections",
                        expected: 4,
                        actual: 0,
                    }),
                };
                r.map(|()| len).map_err(|_| "butterworth")
            }
            2 => {
                let n = u32_at(p, 0);
                let mut taps = [0.0f32; 64];
                for (k, t) in taps[..n.min(64)].iter_mut().enumerate() {
                    *t = f32_at(p, 4 + 4 * k);
                }
                let r = match n {
                    5 => fir::<5>(&taps[..n], y),
                    16 => fir::<16>(&taps[..n], y),
                    31 => fir::<31>(&taps[..n], y),
                    _ => Err(dsp::DspError::Length {
                        what: "taps",
                        expected: 0,
                        actual: n,
                    }),
                };
                r.map(|()| len).map_err(|_| "fir")
            }
            3 => match u32_at(p, 0) {
                1 => Ok(moving_average::<1>(y)),
                5 => Ok(moving_average::<5>(y)),
                32 => Ok(moving_average::<32>(y)),
                _ => Err("moving average width"),
            }
            .map(|()| len),
            4 => dsp::DcBlocker::new(f32_at(p, 0))
                .map(|mut d| {
                    counted(|| {
                        d.process(y);
                        core::hint::black_box(&*y);
                    });
                    len
                })
                .map_err(|_| "dc blocker"),
            5 | 6 => {
                let (start, width, floor) = (u32_at(p, 0), u32_at(p, 4), f32_at(p, 8));
                if start + width > len {
                    Err("window")
                } else {
                    output.copy_within(start..start + width, 0);
                    let w = &mut output[..width];
                    let r = counted(|| {
                        let r = if kind == 5 {
                            dsp::z_score(w, floor)
                        } else {
                            dsp::min_max(w, floor)
                        };
                        core::hint::black_box(&*w);
                        r
                    });
                    r.map(|()| width).map_err(|_| "normalize")
                }
            }
            7 => {
                let (width, hop, chunk) = (u32_at(p, 0), u32_at(p, 4), u32_at(p, 8));
                let x = &input[..len];
                match width {
                    64 => windows::<64>(x, hop, chunk, output),
                    100 => windows::<100>(x, hop, chunk, output),
                    50 => windows::<50>(x, hop, chunk, output),
                    1 => windows::<1>(x, hop, chunk, output),
                    1024 => windows::<1024>(x, hop, chunk, output),
                    _ => None,
                }
                .ok_or("windows")
            }
            9 => {
                let x = &input[..len];
                match u32_at(p, 0) {
                    8 => spectrum::<8>(x, p, words, output),
                    64 => spectrum::<64>(x, p, words, output),
                    256 => spectrum::<256>(x, p, words, output),
                    1024 => spectrum::<1024>(x, p, words, output),
                    _ => None,
                }
                .ok_or("spectrum")
            }
            13 => {
                let cut = (f64_at(p, 12), f64_at(p, 20));
                let band = match u32_at(p, 0) {
                    0 => dsp::Band::LowPass { cutoff_hz: cut.0 },
                    1 => dsp::Band::HighPass { cutoff_hz: cut.0 },
                    _ => dsp::Band::BandPass {
                        low_hz: cut.0,
                        high_hz: cut.1,
                    },
                };
                let spec = dsp::Butterworth {
                    band,
                    order: u32_at(p, 4),
                    fs_hz: f64_at(p, 28),
                };
                match counted(|| spec.design()) {
                    Ok(sos) => {
                        let rows = sos.sections();
                        // SAFETY: any f64 is 8 initialized bytes; little-endian target.
                        let bytes = unsafe {
                            core::slice::from_raw_parts(rows.as_ptr().cast::<u8>(), rows.len() * 48)
                        };
                        line(format_args!("dsp {i} {:08x}", medwasm::crc32(bytes)));
                        passed += 1;
                    }
                    Err(_) => {
                        line(format_args!("dsp {i} error design"));
                        failed += 1;
                    }
                }
                i += 1;
                continue;
            }
            10 => match u32_at(p, 0) {
                1 => Ok(moving_median::<1>(y)),
                5 => Ok(moving_median::<5>(y)),
                6 => Ok(moving_median::<6>(y)),
                31 => Ok(moving_median::<31>(y)),
                _ => Err("moving median width"),
            }
            .map(|()| len),
            11 | 12 => {
                let x = &input[..len];
                match u32_at(p, 4) {
                    41 => resample::<41>(kind, p, x, output),
                    61 => resample::<61>(kind, p, x, output),
                    31 => resample::<31>(kind, p, x, output),
                    24 => resample::<24>(kind, p, x, output),
                    _ => None,
                }
                .ok_or("resample")
            }
            8 => {
                let n = words / 3;
                for (k, v) in input[..words].iter_mut().enumerate() {
                    *v = f32_at(p, 4 * k);
                }
                len = 0; // the accelerometer data replaced the signal
                counted(|| dsp::magnitudes(&input[..3 * n], &mut output[..n]))
                    .map(|()| n)
                    .map_err(|_| "smv")
            }
            _ => Err("kind"),
        };
        match done {
            Ok(n) => {
                line(format_args!("dsp {i} {:08x}", output_crc(&output[..n])));
                passed += 1;
            }
            Err(what) => {
                line(format_args!("dsp {i} error {what}"));
                failed += 1;
            }
        }
        i += 1;
    }
    (passed, failed)
}
