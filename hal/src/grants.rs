//! This domain's grant table: which of its pages another domain may map.
//!
//! A grant lets a peer write the page, so only pages the kernel holds no
//! Rust objects in can be granted: a pool [`Frame`] or a page of a
//! [`SharedRegion`] (accessed only atomically or volatile). Both are
//! values only hal mints, which is what makes [`GrantTable::grant_frame`]
//! and [`GrantTable::grant_region_page`] sound.

use crate::hypercall::XenError;
use crate::mm::Frame;
use crate::shared::{SharedPage, SharedRegion};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use xen::public::gnttab;

/// Grant references this kernel hands out (one grant-table frame: 512
/// entries, the first 8 reserved).
const GRANT_REFS: u32 = 512;

/// Why a grant failed or could not end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// Every reference is in use.
    Full,
    /// The page is not one this kernel can grant.
    BadPage,
    /// The peer still maps the page: access cannot end yet.
    StillMapped,
    /// The reference is not one of ours, or not in use.
    NotGranted,
}

pub struct GrantTable {
    table: SharedPage,
    free: Vec<u32>,
    in_use: Vec<u32>,
}

static SET_UP: spin::Once<()> = spin::Once::new();

/// Whether the grant table was set up (and so is mapped).
pub(crate) fn is_set_up() -> bool {
    SET_UP.is_completed()
}

impl GrantTable {
    /// Sets up and maps the domain's grant table, once (later calls get
    /// `None`: two owners would hand out the same references).
    pub fn set_up() -> Option<Result<GrantTable, XenError>> {
        if SET_UP.is_completed() {
            return None;
        }
        SET_UP.call_once(|| ());
        let table =
            crate::hypercall::gnttab_setup_one_frame().and_then(crate::mm::map_grant_table_page);
        Some(table.map(|table| GrantTable {
            table,
            free: (gnttab::FIRST_FREE_REF..GRANT_REFS).rev().collect(),
            in_use: Vec::new(),
        }))
    }

    fn grant_mfn(&mut self, mfn: u64, peer: u16, readonly: bool) -> Result<u32, GrantError> {
        let gref = self.free.pop().ok_or(GrantError::Full)?;
        let at = gref as usize * gnttab::ENTRY_SIZE;
        self.table
            .store_u16(at + gnttab::ENTRY_DOMID, peer, Ordering::Relaxed);
        self.table
            .store_u32(at + gnttab::ENTRY_FRAME, mfn as u32, Ordering::Relaxed);
        // Frame and domid must be visible before the entry becomes valid.
        let flags = gnttab::GTF_PERMIT_ACCESS | if readonly { gnttab::GTF_READONLY } else { 0 };
        self.table
            .store_u16(at + gnttab::ENTRY_FLAGS, flags, Ordering::SeqCst);
        self.in_use.push(gref);
        Ok(gref)
    }

    /// Lets `peer` map `frame`; returns the grant reference.
    pub fn grant_frame(
        &mut self,
        frame: &Frame,
        peer: u16,
        readonly: bool,
    ) -> Result<u32, GrantError> {
        self.grant_mfn(frame.mfn(), peer, readonly)
    }

    /// Lets `peer` map page `n` of `region`; returns the grant reference.
    pub fn grant_region_page(
        &mut self,
        region: &SharedRegion,
        n: usize,
        peer: u16,
        readonly: bool,
    ) -> Result<u32, GrantError> {
        let mfn = region.page_mfn(n).ok_or(GrantError::BadPage)?;
        self.grant_mfn(mfn, peer, readonly)
    }

    /// Ends a grant, only if the peer no longer maps the page
    /// (`StillMapped` otherwise: the page must not be reused yet).
    pub fn end(&mut self, gref: u32) -> Result<(), GrantError> {
        let Some(pos) = self.in_use.iter().position(|&g| g == gref) else {
            return Err(GrantError::NotGranted);
        };
        let flags_at = gref as usize * gnttab::ENTRY_SIZE + gnttab::ENTRY_FLAGS;
        let flags = self.table.load_u16(flags_at, Ordering::SeqCst);
        if flags & (gnttab::GTF_READING | gnttab::GTF_WRITING) != 0 {
            return Err(GrantError::StillMapped);
        }
        // Xen sets the reading/writing bits when the peer maps: clear the
        // entry only if they are still clear at this very moment.
        if self.table.cmpxchg_u16(flags_at, flags, 0) != flags {
            return Err(GrantError::StillMapped);
        }
        self.in_use.swap_remove(pos);
        self.free.push(gref);
        Ok(())
    }
}
