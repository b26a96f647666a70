//! Linux's `/dev/xen/*` devices, spoken to directly (no libxen*).

pub mod connect;
#[allow(unsafe_code)]
pub mod evtchn;
#[cfg(test)]
pub mod fakexs;
#[allow(unsafe_code)]
pub mod gntdev;
pub mod xenstore;
