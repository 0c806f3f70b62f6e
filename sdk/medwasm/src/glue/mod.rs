//! Target glue: the exported C-ABI functions of `docs/detector-abi.md`, generated in
//! the detector crate by [`crate::export_detector!`], over the state kept here.

use crate::detector::{Detector, Finding, Io, Linked};
use crate::error::{Error, MessageSink};
use crate::model::Model;
use crate::ops::{AllOps, OpSet};
use crate::plan::PlanStorage;
use crate::runtime::Runtime;

#[cfg(all(
    feature = "panic-handler",
    not(feature = "std"),
    target_arch = "wasm32"
))]
mod panic_wasm;

#[cfg(all(not(feature = "std"), target_arch = "wasm32", target_os = "wasi"))]
mod memcmp_wasi;

/// Version of the exported ABI: 2 added `medwasm_input_dtype`/`medwasm_output_dtype`
/// and int8 graph inputs and outputs (`cargo medwasm import --io int8`).
pub const ABI_VERSION: i32 = 2;

const ERR_CAP: usize = 256;

/// The state behind the exported functions: one per detector instance.
#[derive(Debug)]
pub struct Glue {
    rt: Option<Runtime<'static, 'static>>,
    finding: Finding,
    err: [u8; ERR_CAP],
    err_len: usize,
}

impl Default for Glue {
    fn default() -> Self {
        Self::new()
    }
}

struct ErrWriter<'b> {
    buf: &'b mut [u8; ERR_CAP],
    len: usize,
    full: bool,
}

impl MessageSink for ErrWriter<'_> {
    fn put(&mut self, s: &str) {
        for ch in s.chars() {
            let mut tmp = [0u8; 4];
            let enc = ch.encode_utf8(&mut tmp).as_bytes();
            if self.full || self.len + enc.len() > ERR_CAP {
                self.full = true;
                return;
            }
            self.buf[self.len..self.len + enc.len()].copy_from_slice(enc);
            self.len += enc.len();
        }
    }
}

impl Glue {
    /// An uninitialized state.
    pub const fn new() -> Glue {
        Glue {
            rt: None,
            finding: Finding {
                score: 0.0,
                label: 0,
                alert: false,
            },
            err: [0; ERR_CAP],
            err_len: 0,
        }
    }

    fn fail(&mut self, e: Error) -> i32 {
        let mut w = ErrWriter {
            buf: &mut self.err,
            len: 0,
            full: false,
        };
        // A message longer than the buffer is cut at a character boundary. Written
        // without `core::fmt`, which would cost a detector kilobytes of flash.
        e.write_message(&mut w);
        self.err_len = w.len;
        e.code()
    }

    /// `medwasm_init`: validates `model`, prepares it into the plan storage and binds
    /// it to the arena that `memory` hands out (idempotent), for a build that links
    /// every operator.
    pub fn init(
        &mut self,
        model: &'static [u8],
        memory: impl FnOnce() -> (&'static mut [u8], PlanStorage<'static>),
    ) -> i32 {
        self.init_in::<AllOps>(model, memory)
    }

    /// `medwasm_init` for detector `D`: only the operators of `D::OPS` are accepted,
    /// and only their kernels are linked. What [`crate::export_detector!`] calls.
    pub fn init_for<D: Detector>(
        &mut self,
        model: &'static [u8],
        memory: impl FnOnce() -> (&'static mut [u8], PlanStorage<'static>),
    ) -> i32 {
        self.init_in::<Linked<D>>(model, memory)
    }

    fn init_in<S: OpSet>(
        &mut self,
        model: &'static [u8],
        memory: impl FnOnce() -> (&'static mut [u8], PlanStorage<'static>),
    ) -> i32 {
        if self.rt.is_some() {
            return 0;
        }
        self.err_len = 0;
        // The tables first, then `Runtime::new_in` prepares every node with the
        // loader's own checks as it builds the plan: the checks of `Model::load_in`
        // in one pass instead of two, which halves the work of init and links one
        // copy of the per-operator checks instead of two.
        let prepared = Model::read_tables(model).and_then(|m| {
            let (arena, plan) = memory();
            Runtime::new_in::<S>(m, arena, plan)
        });
        match prepared {
            Ok(rt) => {
                self.rt = Some(rt);
                0
            }
            Err(e) => self.fail(e),
        }
    }

    /// Counts of inputs (`output = false`) or outputs; -1 before init.
    pub fn count(&self, output: bool) -> i32 {
        match &self.rt {
            Some(rt) if output => rt.model().output_count() as i32,
            Some(rt) => rt.model().input_count() as i32,
            None => -1,
        }
    }

    /// Elements of input or output `i`; -1 when out of range or before init.
    pub fn len(&self, output: bool, i: i32) -> i32 {
        self.view(output, i).map(|v| v.len() as i32).unwrap_or(-1)
    }

    /// Element type of input or output `i` as its model-format code (1 = f32, 2 =
    /// i8: [`crate::format::DType`]); -1 when out of range or before init.
    pub fn dtype(&self, output: bool, i: i32) -> i32 {
        self.view(output, i).map(|v| v.dtype() as i32).unwrap_or(-1)
    }

    /// Input or output `i`, from the plan's spans like `ptr` (no tensor record is
    /// decoded again).
    fn view(&self, output: bool, i: i32) -> Option<crate::View<'_>> {
        let rt = self.rt.as_ref()?;
        let i = usize::try_from(i).ok()?;
        if output {
            rt.output_view(i).ok()
        } else {
            rt.input_view(i).ok()
        }
    }

    /// Address of input or output `i`, whatever its element type; null when out of
    /// range or before init.
    pub fn ptr(&mut self, output: bool, i: i32) -> *mut u8 {
        let Some(rt) = &mut self.rt else {
            return core::ptr::null_mut();
        };
        let Ok(i) = usize::try_from(i) else {
            return core::ptr::null_mut();
        };
        if output {
            rt.output_view(i)
                .map(|v| v.bytes().as_ptr() as *mut u8)
                .unwrap_or(core::ptr::null_mut())
        } else {
            rt.input_view_mut(i)
                .map(|v| v.bytes().as_mut_ptr())
                .unwrap_or(core::ptr::null_mut())
        }
    }

    /// `medwasm_run`: checks inputs, runs, interprets.
    pub fn run<D: Detector>(&mut self, detector: &D) -> i32 {
        self.err_len = 0;
        let Some(rt) = &mut self.rt else {
            return self.fail(Error::NotInitialized);
        };
        let result = rt
            .run_in::<Linked<D>>()
            .and_then(|()| detector.interpret(&Io::new(rt)));
        match result {
            Ok(f) => {
                self.finding = f;
                0
            }
            Err(e) => self.fail(e),
        }
    }

    /// The last finding.
    pub fn finding(&self) -> Finding {
        self.finding
    }

    /// The last error message.
    pub fn error(&self) -> &[u8] {
        &self.err[..self.err_len]
    }
}

/// Exports a [`Detector`] through the C ABI of `docs/detector-abi.md`:
/// `medwasm::export_detector!(MyDetector = MyDetector::new());`
#[macro_export]
macro_rules! export_detector {
    ($ty:ty = $init:expr) => {
        const _: () = {
            #[repr(C, align(16))]
            struct Arena([u8; <$ty as $crate::Detector>::ARENA_BYTES]);
            static mut ARENA: Arena = Arena([0; <$ty as $crate::Detector>::ARENA_BYTES]);
            // The prepared plan: filled once by `medwasm_init`, read by every run.
            static mut PLAN: $crate::PlanArrays<
                { <$ty as $crate::Detector>::NODES },
                { <$ty as $crate::Detector>::OPERANDS },
            > = $crate::PlanArrays::new();
            static mut GLUE: $crate::glue::Glue = $crate::glue::Glue::new();
            static DETECTOR: $ty = $init;

            fn glue() -> &'static mut $crate::glue::Glue {
                // SAFETY: a detector instance is single-threaded (wasm, or one MCU
                // context), and each exported call takes this reference only for its
                // own duration.
                unsafe { &mut *(&raw mut GLUE) }
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_abi_version() -> i32 {
                $crate::glue::ABI_VERSION
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_init() -> i32 {
                glue().init_for::<$ty>(<$ty as $crate::Detector>::MODEL, || {
                    // SAFETY: the arena and the plan storage are handed out at most once
                    // per init that reaches them, and the runtime holding the previous
                    // borrow is gone by then: a failed init drops it, a successful one
                    // makes every later init return early without calling this.
                    unsafe { (&mut (*(&raw mut ARENA)).0, (*(&raw mut PLAN)).storage()) }
                })
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_input_count() -> i32 {
                glue().count(false)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_output_count() -> i32 {
                glue().count(true)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_input_len(i: i32) -> i32 {
                glue().len(false, i)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_output_len(i: i32) -> i32 {
                glue().len(true, i)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_input_dtype(i: i32) -> i32 {
                glue().dtype(false, i)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_output_dtype(i: i32) -> i32 {
                glue().dtype(true, i)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_input_ptr(i: i32) -> *mut u8 {
                glue().ptr(false, i)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_output_ptr(i: i32) -> *mut u8 {
                glue().ptr(true, i)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_run() -> i32 {
                glue().run(&DETECTOR)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_finding_score() -> f32 {
                glue().finding().score
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_finding_label() -> i32 {
                glue().finding().label
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_finding_alert() -> i32 {
                glue().finding().alert as i32
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_error_ptr() -> *const u8 {
                glue().error().as_ptr()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_error_len() -> i32 {
                glue().error().len() as i32
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_model_ptr() -> *const u8 {
                <$ty as $crate::Detector>::MODEL.as_ptr()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn medwasm_model_len() -> i32 {
                <$ty as $crate::Detector>::MODEL.len() as i32
            }
        };
    };
}

/// Embeds a model blob 16-byte aligned, so weights can be borrowed as `f32`:
/// `const MODEL: &[u8] = medwasm::include_model!("../model/model.mwm");`
#[macro_export]
macro_rules! include_model {
    ($path:literal) => {{
        #[repr(C, align(16))]
        struct Aligned<T: ?Sized>(T);
        static BLOB: &Aligned<[u8]> = &Aligned(*include_bytes!($path));
        &BLOB.0
    }};
}
