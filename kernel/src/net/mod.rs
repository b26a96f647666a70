//! The network: the smoltcp stack over netfront with sockets as event
//! sources (`stack`), and the pure parts it is built from, host-tested:
//! received-frame checks, the gratuitous ARP, the Internet checksum, segment joining (TSO),
//! transmit checksum offload, TCP initial sequence numbers and ephemeral
//! ports (and, on the host, the attack they resist).

pub mod announce;
pub mod inetsum;
pub mod isn;
pub mod netcheck;
#[cfg(not(target_os = "none"))]
pub mod seqattack;
#[cfg(all(target_os = "none", feature = "net"))]
pub mod stack;
pub mod tso;
pub mod txcsum;
