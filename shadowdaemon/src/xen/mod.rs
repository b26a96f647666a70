//! Linux's `/dev/xen/*` devices, spoken to directly (no libxen*).

#[allow(unsafe_code)]
pub mod gntdev;
