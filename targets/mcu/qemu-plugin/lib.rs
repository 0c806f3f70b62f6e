//! `medwasm-icount`: a QEMU TCG plugin that counts, exactly, the guest instructions
//! the test firmware of `cargo medwasm build --target mcu` executes between two marker
//! functions. `cargo medwasm bench --target mcu` generates a crate around this file
//! and builds it for the host (`cargo-medwasm/src/targets/mcu/plugin.rs`).
//!
//! Counting: when QEMU translates a block of guest code, every instruction in it gets
//! an inline "add 1" to one counter, emitted before the instruction's own code. The
//! counter therefore moves once per instruction that starts executing: a block left
//! early (an exception, an interrupt taken between blocks) counts only what ran, which
//! a per-block count could not promise. The first instructions of the firmware's
//! `medwasm_firmware_count_begin` and `medwasm_firmware_count_end` (addresses `begin=`
//! and `end=`, read by the host from the ELF's symbol table) also get a callback; at
//! each end the plugin appends `count <instructions since the begin>` to the file
//! `out=`. Both markers are reached the same way every time, so which of the two
//! marker instructions falls inside the difference is the same for every count, and
//! the host's calibration checks the convention (see `targets/mcu/firmware/main.rs`).
//!
//! The API used is QEMU's plugin API version 1 (QEMU 7.2 to 8.2), declared below from
//! its documentation (docs/devel/tcg-plugins.rst and the comments of
//! `include/qemu/qemu-plugin.h`); the functions resolve against the `qemu-system-arm`
//! binary that loads the plugin. The plugin only observes: it cannot change the guest.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::fs::File;
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The plugin API version this plugin is written against; QEMU refuses to load a
/// plugin outside the range it supports.
#[unsafe(no_mangle)]
pub static qemu_plugin_version: c_int = 1;

/// `qemu_plugin_id_t`: the handle QEMU gives the plugin at install.
type PluginId = u64;

/// `qemu_info_t`, as far as this plugin reads it: the target's name, the range of API
/// versions QEMU supports, whether it emulates a system, and (system emulation only)
/// the number of vCPUs.
#[repr(C)]
pub struct QemuInfo {
    target_name: *const c_char,
    version_min: c_int,
    version_cur: c_int,
    system_emulation: bool,
    smp_vcpus: c_int,
    max_vcpus: c_int,
}

/// `struct qemu_plugin_tb`: an opaque translation block, valid during the callback.
#[repr(C)]
pub struct Tb {
    _opaque: [u8; 0],
}

/// `struct qemu_plugin_insn`: an opaque instruction of a block being translated.
#[repr(C)]
pub struct Insn {
    _opaque: [u8; 0],
}

/// `QEMU_PLUGIN_INLINE_ADD_U64` of `enum qemu_plugin_op`: add an immediate to a `u64`.
const INLINE_ADD_U64: c_int = 0;
/// `QEMU_PLUGIN_CB_NO_REGS` of `enum qemu_plugin_cb_flags`: the callback reads no
/// guest registers.
const CB_NO_REGS: c_int = 0;

type TbTransCb = unsafe extern "C" fn(id: PluginId, tb: *mut Tb);
type VcpuUdataCb = unsafe extern "C" fn(vcpu_index: c_uint, userdata: *mut c_void);

unsafe extern "C" {
    fn qemu_plugin_register_vcpu_tb_trans_cb(id: PluginId, cb: TbTransCb);
    fn qemu_plugin_tb_n_insns(tb: *const Tb) -> usize;
    fn qemu_plugin_tb_get_insn(tb: *const Tb, idx: usize) -> *mut Insn;
    fn qemu_plugin_insn_vaddr(insn: *const Insn) -> u64;
    fn qemu_plugin_register_vcpu_insn_exec_inline(
        insn: *mut Insn,
        op: c_int,
        ptr: *mut c_void,
        imm: u64,
    );
    fn qemu_plugin_register_vcpu_insn_exec_cb(
        insn: *mut Insn,
        cb: VcpuUdataCb,
        flags: c_int,
        userdata: *mut c_void,
    );
}

/// Instructions executed since QEMU started, advanced by the inline ops. Only the
/// one vCPU writes it (install refuses more), from the code QEMU generates.
static EXECUTED: AtomicU64 = AtomicU64::new(0);

/// Marker addresses (Thumb bit clear), set once at install before any translation.
static BEGIN: AtomicU64 = AtomicU64::new(u64::MAX);
static END: AtomicU64 = AtomicU64::new(u64::MAX);

/// Callback data telling the two markers apart.
const AT_BEGIN: usize = 1;
const AT_END: usize = 2;

/// The open section and where the counts go.
struct State {
    out: Option<File>,
    open_since: Option<u64>,
}

static STATE: Mutex<State> = Mutex::new(State {
    out: None,
    open_since: None,
});

/// Called by QEMU once, when it loads the plugin; non-zero refuses the load.
///
/// # Safety
///
/// QEMU passes a valid `info` and `argc` valid C strings in `argv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qemu_plugin_install(
    id: PluginId,
    info: *const QemuInfo,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: as promised by QEMU, see above.
    match unsafe { install(id, info, argc, argv) } {
        Ok(()) => 0,
        Err(why) => {
            // QEMU adds its own "could not load plugin" line after this one.
            eprintln!("medwasm-icount: {why}");
            1
        }
    }
}

unsafe fn install(
    id: PluginId,
    info: *const QemuInfo,
    argc: c_int,
    argv: *const *const c_char,
) -> Result<(), String> {
    // SAFETY: QEMU passes a valid `qemu_info_t`.
    let info = unsafe { &*info };
    // SAFETY: `target_name` is a C string owned by QEMU.
    let target = unsafe { CStr::from_ptr(info.target_name) }.to_string_lossy();
    if target != "arm" {
        return Err(format!(
            "counts Arm firmware, but this QEMU emulates `{target}`; load it into `qemu-system-arm`"
        ));
    }
    if !info.system_emulation || info.smp_vcpus != 1 {
        return Err(format!(
            "counts one vCPU in system emulation, but this QEMU runs {} vCPUs{}; run one (`-smp 1`)",
            info.smp_vcpus,
            if info.system_emulation {
                ""
            } else {
                " in user mode"
            }
        ));
    }
    let (mut begin, mut end, mut out) = (None, None, None);
    for i in 0..usize::try_from(argc).unwrap_or(0) {
        // SAFETY: `argv` holds `argc` C strings.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) }.to_string_lossy();
        match arg.split_once('=') {
            Some(("begin", v)) => begin = Some(address(v)?),
            Some(("end", v)) => end = Some(address(v)?),
            Some(("out", v)) => out = Some(v.to_string()),
            _ => {
                return Err(format!(
                    "unknown argument `{arg}`; it takes `begin=<hex address>`, `end=<hex address>` and `out=<file>`"
                ));
            }
        }
    }
    let (Some(begin), Some(end), Some(out)) = (begin, end, out) else {
        return Err("needs `begin=<hex address>`, `end=<hex address>` and `out=<file>`".into());
    };
    if begin == end {
        return Err(format!(
            "`begin` and `end` are both {begin:#x}; they must be two different markers"
        ));
    }
    let mut file =
        File::create(&out).map_err(|e| format!("cannot create the count file `{out}`: {e}"))?;
    file.write_all(b"medwasm-icount 1\n")
        .map_err(|e| format!("cannot write the count file `{out}`: {e}"))?;
    BEGIN.store(begin, Ordering::Relaxed);
    END.store(end, Ordering::Relaxed);
    lock().out = Some(file);
    // SAFETY: `id` is this plugin's handle; the callback has the documented signature.
    unsafe { qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate) };
    Ok(())
}

/// `0x1234` (or `1234`) as an address, the Thumb bit cleared: QEMU reports the
/// address of the instruction itself.
fn address(text: &str) -> Result<u64, String> {
    let digits = text.trim_start_matches("0x");
    u64::from_str_radix(digits, 16)
        .map(|a| a & !1)
        .map_err(|_| format!("`{text}` is not a hexadecimal address"))
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    // A poisoned lock only means an earlier write panicked; the state is still usable.
    STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Instruments a block as QEMU translates it (once per block, not per execution).
unsafe extern "C" fn on_translate(_id: PluginId, tb: *mut Tb) {
    let (begin, end) = (BEGIN.load(Ordering::Relaxed), END.load(Ordering::Relaxed));
    // SAFETY: `tb` is valid for the duration of this callback, and so are the
    // instruction handles taken from it.
    unsafe {
        for i in 0..qemu_plugin_tb_n_insns(tb) {
            let insn = qemu_plugin_tb_get_insn(tb, i);
            qemu_plugin_register_vcpu_insn_exec_inline(
                insn,
                INLINE_ADD_U64,
                EXECUTED.as_ptr().cast(),
                1,
            );
            let pc = qemu_plugin_insn_vaddr(insn);
            let marker = if pc == begin {
                AT_BEGIN
            } else if pc == end {
                AT_END
            } else {
                continue;
            };
            qemu_plugin_register_vcpu_insn_exec_cb(
                insn,
                on_marker,
                CB_NO_REGS,
                marker as *mut c_void,
            );
        }
    }
}

/// Runs when a marker's first instruction is about to execute.
unsafe extern "C" fn on_marker(_vcpu: c_uint, marker: *mut c_void) {
    let now = EXECUTED.load(Ordering::Relaxed);
    let mut state = lock();
    let line = match (marker as usize, state.open_since) {
        (AT_BEGIN, None) => {
            state.open_since = Some(now);
            return;
        }
        (AT_END, Some(since)) => {
            state.open_since = None;
            format!("count {}\n", now - since)
        }
        // Both are firmware bugs; the host refuses every count after such a line.
        (AT_BEGIN, Some(_)) => "error begin reached twice without an end\n".to_string(),
        _ => "error end reached without a begin\n".to_string(),
    };
    // Written at once, not buffered: the firmware leaves QEMU through a semihosting
    // exit, and a count on its way to the file must not depend on how QEMU exits.
    if let Some(out) = state.out.as_mut() {
        let _ = out.write_all(line.as_bytes());
    }
}
