//! The network: the smoltcp stack over netfront with sockets as event
//! sources (`stack`), and the pure parts it is built from, host-tested:
//! received-frame checks, the Internet checksum, segment joining (TSO),
//! transmit checksum offload.

pub mod inetsum;
pub mod netcheck;
#[cfg(all(target_os = "none", feature = "net"))]
pub mod stack;
pub mod tso;
pub mod txcsum;
