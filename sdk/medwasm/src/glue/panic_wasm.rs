//! Panic handler for `no_std` wasm detectors: trap. The runtime is written not to
//! panic (the loader validates every index); this is the last line of defence.

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
