//! Fixture check plugin built without the standard library. A component
//! built with `std` for `wasm32-wasip2` imports the WASI CLI, filesystem, I/O
//! and clock interfaces whether it uses them or not, and every instantiation
//! links each of them; this one imports only `greenlight:plugin`. The
//! invocation benchmark runs it beside `fixture-check` to show what those
//! imports cost, and the tests run it through the daemon like any plugin.
//!
//! It answers every call as `fixture-check` does in mode `fail`: a `fail`
//! verdict with one metric, so both run the same logic.

#![no_std]

extern crate alloc;

use alloc::string::ToString;
use alloc::vec::Vec;
use core::alloc::Layout;

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic traps: the host reports it as a trap with its backtrace.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenlight:plugin/check-plugin@0.1.0",
    generate_all,
});

use exports::greenlight::plugin0_1_0::check::Guest;
use greenlight::plugin0_1_0::types::{Metric, ReleaseContext, Target, Verdict, VerdictStatus};

struct Check;

impl Guest for Check {
    fn verify(_ctx: ReleaseContext, _targets: Vec<Target>) -> Verdict {
        Verdict {
            status: VerdictStatus::Fail,
            summary: "fixture failure".to_string(),
            metrics: alloc::vec![Metric {
                name: "error_rate".to_string(),
                value: 0.5,
            }],
        }
    }
}

export!(Check);

/// The canonical ABI's allocator, which `std` would otherwise provide: the
/// host calls it to place arguments in the component's memory.
///
/// # Safety
/// Called by the host only, with a block this function returned and the
/// size and alignment it was returned for, or with a size of zero.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: the host passes a power-of-two alignment and, for a nonzero
    // `old_len`, a block this allocator handed out with that layout.
    let ptr = unsafe {
        if old_len == 0 {
            alloc::alloc::alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            alloc::alloc::realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable()
    }
    ptr
}
