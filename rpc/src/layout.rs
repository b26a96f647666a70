//! The shared page of Xen's `io/libxenvchan.h`, byte by byte, and where the rings live.
//!
//! ```text
//! struct vchan_interface {                 offset
//!     struct ring_shared left, right;      0: left.cons  4: left.prod
//!                                          8: right.cons 12: right.prod
//!     uint16_t left_order, right_order;    16, 18
//!     uint8_t cli_live, srv_live;          20, 21
//!     uint8_t cli_notify, srv_notify;      22, 23
//!     uint32_t grants[0];                  24..: left ring's pages, then right's
//! };
//! ```
//!
//! The *left* ring carries client → server bytes, the *right* ring server → client. A ring
//! of order 10 lives at offset 1024 of the interface page, order 11 at offset 2048, and
//! orders 12..=20 in `2^(order-12)` separately granted pages listed in `grants`. The
//! server chooses the orders and publishes them; the client reads them once when it
//! connects and validates them (see [`Layout::read`]) before mapping anything.

use alloc::vec::Vec;

use crate::error::SetupError;
use crate::mem::SharedMem;

/// Size of a page, and of the vchan interface page.
pub const PAGE_SIZE: usize = 4096;
const PAGE_SHIFT: u8 = 12;

/// Offset of `left.cons` (the server's consumer index on the client → server ring).
pub const LEFT_CONS: usize = 0;
/// Offset of `left.prod` (the client's producer index on the client → server ring).
pub const LEFT_PROD: usize = 4;
/// Offset of `right.cons` (the client's consumer index on the server → client ring).
pub const RIGHT_CONS: usize = 8;
/// Offset of `right.prod` (the server's producer index on the server → client ring).
pub const RIGHT_PROD: usize = 12;
/// Offset of `left_order` (`u16`).
pub const LEFT_ORDER: usize = 16;
/// Offset of `right_order` (`u16`).
pub const RIGHT_ORDER: usize = 18;
/// Offset of `cli_live`.
pub const CLI_LIVE: usize = 20;
/// Offset of `srv_live`.
pub const SRV_LIVE: usize = 21;
/// Offset of `cli_notify`: bits the *server* sets to ask the client to kick it; the client
/// tests and clears them after acting.
pub const CLI_NOTIFY: usize = 22;
/// Offset of `srv_notify`: bits the *client* sets to ask the server to kick it; the server
/// tests and clears them after acting.
pub const SRV_NOTIFY: usize = 23;
/// Offset of `grants[0]`.
pub const GRANTS: usize = 24;
/// Bytes of the interface page that are header (indices, orders, liveness, notify).
pub const HEADER_BYTES: usize = GRANTS;

/// `VCHAN_NOTIFY_WRITE`: "kick me when you write (produce)".
pub const NOTIFY_WRITE: u8 = 0x1;
/// `VCHAN_NOTIFY_READ`: "kick me when you read (consume)".
pub const NOTIFY_READ: u8 = 0x2;

/// Liveness byte: that end has exited (or its mapping was torn down by Xen's unmap notify).
pub const LIVE_CLOSED: u8 = 0;
/// Liveness byte: that end is connected.
pub const LIVE_CONNECTED: u8 = 1;
/// Liveness byte (client only): no client has connected yet.
pub const LIVE_WAITING: u8 = 2;

/// Smallest ring order (1 KiB, inside the interface page at offset 1024).
pub const MIN_ORDER: u8 = 10;
/// Largest ring order libxenvchan accepts (1 MiB, 256 granted pages).
pub const MAX_ORDER: u8 = 20;
const SMALL_RING_OFFSET: usize = 1024;
const LARGE_RING_OFFSET: usize = 2048;

/// One of the two rings, by its vchan name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Client writes, server reads.
    Left,
    /// Server writes, client reads.
    Right,
}

/// Where a ring's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Inside the interface page, starting at this offset.
    InPage {
        /// Byte offset in the interface page (1024 or 2048).
        offset: usize,
    },
    /// In separately granted pages, whose references are `grants[first..first + pages]`.
    Granted {
        /// Index of the first of this ring's entries in the grant list.
        first: usize,
        /// Number of pages (and grant references).
        pages: usize,
    },
}

/// The two ring orders, validated: both in `10..=20`, not both the same in-page order,
/// and a grant list that fits in front of any in-page ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    left: u8,
    right: u8,
}

impl Layout {
    /// Validates a pair of orders.
    pub fn new(left_order: u16, right_order: u16) -> Result<Layout, SetupError> {
        let check = |side, order: u16| {
            if (u16::from(MIN_ORDER)..=u16::from(MAX_ORDER)).contains(&order) {
                Ok(order as u8)
            } else {
                Err(SetupError::OrderOutOfRange { side, order })
            }
        };
        let layout = Layout {
            left: check(Side::Left, left_order)?,
            right: check(Side::Right, right_order)?,
        };
        if layout.left == layout.right && layout.left < PAGE_SHIFT {
            return Err(SetupError::SharedInPageRing);
        }
        let grants_end = GRANTS + 4 * layout.grant_count();
        let limit = [Side::Left, Side::Right]
            .into_iter()
            .filter_map(|s| match layout.placement(s) {
                Placement::InPage { offset } => Some(offset),
                Placement::Granted { .. } => None,
            })
            .min()
            .unwrap_or(PAGE_SIZE);
        if grants_end > limit {
            return Err(SetupError::GrantsOverlapRing {
                grants: layout.grant_count(),
            });
        }
        Ok(layout)
    }

    /// The orders libxenvchan's `libxenvchan_server_init` picks for minimum ring sizes:
    /// the smallest power of two of at least a page, except that rings that fit in 1 KiB
    /// and 2 KiB are put inside the interface page when they can be.
    pub fn for_min_sizes(left_min: usize, right_min: usize) -> Result<Layout, SetupError> {
        let min_order = |size: usize| {
            let mut order = PAGE_SHIFT;
            while order <= MAX_ORDER && size > (1usize << order) {
                order += 1;
            }
            u16::from(order)
        };
        let (small, large) = (1usize << MIN_ORDER, 1usize << (MIN_ORDER + 1));
        let (mut l, mut r) = (min_order(left_min), min_order(right_min));
        let (s, g) = (u16::from(MIN_ORDER), u16::from(MIN_ORDER + 1));
        if left_min <= small && right_min <= large {
            (l, r) = (s, g);
        } else if left_min <= large && right_min <= small {
            (l, r) = (g, s);
        } else if left_min <= large {
            l = g;
        } else if right_min <= large {
            r = g;
        }
        Layout::new(l, r)
    }

    /// Reads and validates the orders from an interface page (the client's first step).
    /// Each order is read exactly once.
    pub fn read<M: SharedMem + ?Sized>(ctrl: &M) -> Result<Layout, SetupError> {
        if ctrl.size() < PAGE_SIZE {
            return Err(SetupError::MemoryTooSmall {
                side: None,
                needed: PAGE_SIZE,
                got: ctrl.size(),
            });
        }
        let u16_at = |off| u16::from_le_bytes([ctrl.load_u8(off), ctrl.load_u8(off + 1)]);
        Layout::new(u16_at(LEFT_ORDER), u16_at(RIGHT_ORDER))
    }

    /// Writes the orders and the grant list into an interface page (the server's set-up).
    pub(crate) fn write<M: SharedMem + ?Sized>(&self, ctrl: &M, grants: &[u32]) {
        for (off, order) in [(LEFT_ORDER, self.left), (RIGHT_ORDER, self.right)] {
            ctrl.store_u8(off, order);
            ctrl.store_u8(off + 1, 0);
        }
        for (i, g) in grants.iter().enumerate() {
            ctrl.store_u32_release(GRANTS + 4 * i, *g);
        }
    }

    /// Reads the grant references of one ring (call after [`Layout::read`] validated the
    /// page). Bounded by the layout: at most 256 entries.
    pub fn read_grants<M: SharedMem + ?Sized>(&self, ctrl: &M, side: Side) -> Vec<u32> {
        match self.placement(side) {
            Placement::InPage { .. } => Vec::new(),
            Placement::Granted { first, pages } => (first..first + pages)
                .map(|i| ctrl.load_u32_acquire(GRANTS + 4 * i))
                .collect(),
        }
    }

    /// The order (log2 of the size in bytes) of one ring.
    pub fn order(&self, side: Side) -> u8 {
        match side {
            Side::Left => self.left,
            Side::Right => self.right,
        }
    }

    /// The size in bytes of one ring.
    pub fn ring_size(&self, side: Side) -> usize {
        1usize << self.order(side)
    }

    /// Pages granted separately for one ring (0 for an in-page ring).
    pub fn pages(&self, side: Side) -> usize {
        let order = self.order(side);
        if order >= PAGE_SHIFT {
            1usize << (order - PAGE_SHIFT)
        } else {
            0
        }
    }

    /// Total grant references in the list: the left ring's pages, then the right's.
    pub fn grant_count(&self) -> usize {
        self.pages(Side::Left) + self.pages(Side::Right)
    }

    /// Where one ring's bytes are.
    pub fn placement(&self, side: Side) -> Placement {
        match self.order(side) {
            10 => Placement::InPage {
                offset: SMALL_RING_OFFSET,
            },
            11 => Placement::InPage {
                offset: LARGE_RING_OFFSET,
            },
            _ => Placement::Granted {
                first: if side == Side::Left {
                    0
                } else {
                    self.pages(Side::Left)
                },
                pages: self.pages(side),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::HeapMem;

    #[test]
    fn offsets_match_the_c_struct() {
        // 2 x ring_shared (8 bytes each), 2 x u16, 4 x u8, then the grants.
        assert_eq!(
            (LEFT_CONS, LEFT_PROD, RIGHT_CONS, RIGHT_PROD),
            (0, 4, 8, 12)
        );
        assert_eq!((LEFT_ORDER, RIGHT_ORDER), (16, 18));
        assert_eq!(
            (CLI_LIVE, SRV_LIVE, CLI_NOTIFY, SRV_NOTIFY),
            (20, 21, 22, 23)
        );
        assert_eq!(GRANTS, 24);
        assert_eq!((NOTIFY_WRITE, NOTIFY_READ), (1, 2));
    }

    #[test]
    fn placements() {
        let l = Layout::new(10, 11).unwrap();
        assert_eq!(l.placement(Side::Left), Placement::InPage { offset: 1024 });
        assert_eq!(l.placement(Side::Right), Placement::InPage { offset: 2048 });
        assert_eq!(l.grant_count(), 0);
        let l = Layout::new(13, 12).unwrap();
        assert_eq!(
            l.placement(Side::Left),
            Placement::Granted { first: 0, pages: 2 }
        );
        assert_eq!(
            l.placement(Side::Right),
            Placement::Granted { first: 2, pages: 1 }
        );
        assert_eq!(l.grant_count(), 3);
        assert_eq!(l.ring_size(Side::Left), 8192);
    }

    #[test]
    fn rejects_bad_orders() {
        assert_eq!(
            Layout::new(9, 12),
            Err(SetupError::OrderOutOfRange {
                side: Side::Left,
                order: 9
            })
        );
        assert_eq!(
            Layout::new(12, 21),
            Err(SetupError::OrderOutOfRange {
                side: Side::Right,
                order: 21
            })
        );
        assert_eq!(Layout::new(10, 10), Err(SetupError::SharedInPageRing));
        assert_eq!(Layout::new(11, 11), Err(SetupError::SharedInPageRing));
        // 256 grants (1 KiB) cannot sit between offset 24 and a ring at 1024.
        assert_eq!(
            Layout::new(10, 20),
            Err(SetupError::GrantsOverlapRing { grants: 256 })
        );
        assert!(Layout::new(10, 19).is_ok());
        assert!(Layout::new(20, 20).is_ok());
    }

    #[test]
    fn min_sizes_follow_libxenvchan() {
        assert_eq!(Layout::for_min_sizes(1024, 2048), Layout::new(10, 11));
        assert_eq!(Layout::for_min_sizes(2000, 100), Layout::new(11, 10));
        assert_eq!(Layout::for_min_sizes(2000, 5000), Layout::new(11, 13));
        assert_eq!(Layout::for_min_sizes(70000, 1), Layout::new(17, 11));
        assert_eq!(Layout::for_min_sizes(65536, 65536), Layout::new(16, 16));
        assert!(Layout::for_min_sizes(1 << 21, 1).is_err());
    }

    #[test]
    fn write_then_read_round_trips() {
        let page = HeapMem::new(PAGE_SIZE);
        let l = Layout::new(12, 13).unwrap();
        l.write(&page, &[7, 8, 9]);
        assert_eq!(Layout::read(&page), Ok(l));
        assert_eq!(l.read_grants(&page, Side::Left), [7]);
        assert_eq!(l.read_grants(&page, Side::Right), [8, 9]);
        page.store_u8(RIGHT_ORDER + 1, 1); // order 0x10d
        assert_eq!(
            Layout::read(&page),
            Err(SetupError::OrderOutOfRange {
                side: Side::Right,
                order: 0x10d
            })
        );
        assert!(matches!(
            Layout::read(&HeapMem::new(100)),
            Err(SetupError::MemoryTooSmall { side: None, .. })
        ));
    }
}
