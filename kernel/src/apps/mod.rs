//! Linked-in applications, run as kernel-scheduled processes. They use only
//! the system calls in [`crate::syscall`].

pub mod control;
#[cfg(feature = "net")]
pub mod net_setup;
pub mod rpc_offer;

// The one test app left (feature `test-apps`, the `guest-test` image): it
// tests the kernel's own handling of a stale page, from inside the kernel.
// The test suites, benchmarks and fault scenarios are programs.
#[cfg(feature = "test-apps")]
pub mod stale_page;

/// A process to start: its name and entry point.
pub type ProcessSpec = (&'static str, fn());

/// The apps a command line can ask for (`ethos.app=`: its values in the
/// options' table, `xen::options`, are these).
pub fn by_name(name: &str) -> Option<&'static [ProcessSpec]> {
    match name {
        "none" => Some(&[]),
        _ => test_app(name),
    }
}

#[cfg(feature = "test-apps")]
fn test_app(name: &str) -> Option<&'static [ProcessSpec]> {
    match name {
        "stale-page" => Some(stale_page::PROCESSES),
        _ => None,
    }
}

#[cfg(not(feature = "test-apps"))]
fn test_app(_name: &str) -> Option<&'static [ProcessSpec]> {
    None
}

/// Waits for an event and retires it; `Ok` with its value only for a
/// successful completion.
pub fn wait_ok(
    id: Result<events::EventId, crate::status::SysError>,
    what: &str,
) -> Result<events::Value, alloc::string::String> {
    let id = id.map_err(|e| alloc::format!("{what}: {e}"))?;
    let r = crate::syscall::block_and_retire(id).map_err(|e| alloc::format!("{what}: {e}"))?;
    if r.status != events::Status::Ok {
        return Err(alloc::format!("{what}: {}", r.status));
    }
    Ok(r.value)
}

/// Publishes a vchan's `ring-ref` and `event-channel` under `node` (relative
/// to the guest's home), with the `extra` keys beside them, in one xenstore
/// transaction (a reader sees all of them or none), readable by this domain
/// alone (and dom0, which reads everything), retrying while the commit meets
/// EAGAIN, as libxenvchan's server does.
pub fn publish_vchan(
    node: &str,
    ring_ref: u32,
    port: u32,
    extra: &[(&str, &str)],
    me: &str,
) -> Result<(), alloc::string::String> {
    use alloc::format;
    let (ring_ref, port) = (format!("{ring_ref}"), format!("{port}"));
    for _ in 0..10 {
        let tx = match wait_ok(crate::syscall::xs_transaction_start(), "transaction")? {
            events::Value::Word(tx) => tx as u32,
            _ => return Err(alloc::string::String::from("transaction id: not a word")),
        };
        let keys = [
            ("ring-ref", ring_ref.as_str()),
            ("event-channel", port.as_str()),
        ];
        for &(key, value) in keys.iter().chain(extra) {
            let path = format!("{node}/{key}");
            wait_ok(
                crate::syscall::xs_write(&path, value.as_bytes(), tx),
                "write key",
            )?;
            wait_ok(
                crate::syscall::xs_set_perms(&path, &[&format!("n{me}")], tx),
                "set perms",
            )?;
        }
        let end =
            crate::syscall::xs_transaction_end(tx, true).map_err(|e| format!("commit: {e}"))?;
        match crate::syscall::block_and_retire(end)
            .map_err(|e| format!("commit: {e}"))?
            .status
        {
            events::Status::Ok => return Ok(()),
            events::Status::Remote(11) => continue,
            s => return Err(format!("commit: {s}")),
        }
    }
    Err(alloc::string::String::from("ten commits met EAGAIN"))
}

/// Blocks until `id` completes or `ms` milliseconds pass (an OR tree of the
/// event and a beep). Returns whether `id` completed; the beep is gone
/// either way, `id` stays the caller's.
pub fn wait_or_timeout(id: events::EventId, ms: u64) -> Result<bool, alloc::string::String> {
    use alloc::format;
    let timeout = crate::syscall::beep(crate::syscall::get_time() + ms * 1_000_000)
        .map_err(|e| format!("beep: {e}"))?;
    let spec = events::Tree::any([id, timeout])
        .to_spec()
        .map_err(|e| format!("{e}"))?;
    let woke = crate::syscall::block(&spec).map_err(|e| format!("block: {e}"))?;
    let _ = crate::syscall::cancel(timeout).and_then(|_| crate::syscall::retire(timeout));
    Ok(woke.contains(&id))
}
