//! What each channel id of a PD may do, lowered once at boot from the boot description's
//! channel and IRQ tables into a per-PD array indexed by channel id: the system-call path then
//! checks a grant with one array read.

use bootinfo::BootInfo;
use edgeos_kernel_abi::CHANNEL_IDS;

/// "No PD" in child tables.
pub const NO_CHILD: u32 = u32::MAX;

/// The use a PD may make of one of its channel ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Grant {
    /// Nothing is granted on this id.
    #[default]
    None,
    /// One end of a channel to `peer`, who sees it as `peer_id`.
    Channel { peer: u32, peer_id: u8, notify: bool, pp: bool },
    /// A hardware interrupt delivered on this id.
    Irq { irq: u32 },
    /// The static end of channel array `array` (see [`crate::arrays`]).
    Array { array: u16 },
    /// An instance's end of channel array `array`: a notify marks the instance in the array and
    /// signals `peer` on `peer_id`.
    ArrayMember { peer: u32, peer_id: u8, array: u16, notify: bool },
}

/// A PD's grants, indexed by channel id.
pub type GrantTable = [Grant; CHANNEL_IDS];

/// Why the description could not be lowered (the image tool should have refused it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// Two channel or IRQ ends of `pd` use channel id `id`.
    DuplicateId { pd: u32, id: u32 },
    /// Two children of `pd` use child id `id`.
    DuplicateChild { pd: u32, id: u32 },
}

impl core::fmt::Display for GrantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GrantError::DuplicateId { pd, id } => write!(f, "PD {pd} uses channel id {id} twice"),
            GrantError::DuplicateChild { pd, id } => write!(f, "PD {pd} has two children with id {id}"),
        }
    }
}

/// Calls `set(pd, id, grant)` for every channel end and IRQ of the description.
pub fn build_into(info: &BootInfo, set: &mut impl FnMut(u32, u32, Grant) -> Result<(), GrantError>) -> Result<(), GrantError> {
    for c in 0..info.channel_count() {
        let ch = info.channel(c);
        for (me, other) in [(0, 1), (1, 0)] {
            let (a, b) = (ch.ends[me], ch.ends[other]);
            set(a.pd, a.id, Grant::Channel { peer: b.pd, peer_id: b.id as u8, notify: a.notify, pp: a.pp })?;
        }
    }
    for pd in 0..info.pd_count() {
        let p = info.pd(pd);
        for i in info.pd_irqs(&p) {
            let irq = info.irq(i);
            set(pd as u32, irq.channel_id, Grant::Irq { irq: irq.irq })?;
        }
    }
    Ok(())
}

/// Calls `set(parent, child_id, child)` for every PD with a parent.
pub fn build_children_into(info: &BootInfo, set: &mut impl FnMut(u32, u32, u32) -> Result<(), GrantError>) -> Result<(), GrantError> {
    for pd in 0..info.pd_count() {
        let p = info.pd(pd);
        if p.parent != bootinfo::NO_PD {
            set(p.parent, p.child_id, pd as u32)?;
        }
    }
    Ok(())
}

/// Fills `tables[pd]` for every PD from the channel and IRQ tables. `tables` has one entry per PD.
/// Ids and PD indices were range-checked by `BootInfo::parse`.
pub fn build(info: &BootInfo, tables: &mut [GrantTable]) -> Result<(), GrantError> {
    for t in tables.iter_mut() {
        *t = [Grant::None; CHANNEL_IDS];
    }
    build_into(info, &mut |pd, id, g| {
        let slot = &mut tables[pd as usize][id as usize];
        if *slot != Grant::None {
            return Err(GrantError::DuplicateId { pd, id });
        }
        *slot = g;
        Ok(())
    })
}

/// Fills `children[parent][child_id] = child` for every PD with a parent.
pub fn build_children(info: &BootInfo, children: &mut [[u32; CHANNEL_IDS]]) -> Result<(), GrantError> {
    for c in children.iter_mut() {
        *c = [NO_CHILD; CHANNEL_IDS];
    }
    build_children_into(info, &mut |parent, id, child| {
        let slot = &mut children[parent as usize][id as usize];
        if *slot != NO_CHILD {
            return Err(GrantError::DuplicateChild { pd: parent, id });
        }
        *slot = child;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootinfo::{Builder, Channel, ChannelEnd, Irq, ProtectionDomain, Range, Trigger, NO_PD};
    use std::vec;

    fn pd(b: &mut Builder, name: &str, parent: u32, child_id: u32, irqs: Range) -> ProtectionDomain {
        let name = b.add_string(name);
        ProtectionDomain {
            name,
            parent,
            child_id,
            budget_us: 1000,
            period_us: 1000,
            stack_size: 0x1000,
            stack_top: bootinfo::layout::PD_STACK_TOP,
            irqs,
            ..Default::default()
        }
    }

    #[test]
    fn lowers_channels_irqs_and_children() {
        let mut b = Builder::new();
        let p0 = pd(&mut b, "a", NO_PD, 0, Range::default());
        let p1 = pd(&mut b, "b", 0, 7, Range { first: 0, count: 1 });
        b.pds.push(p0);
        b.pds.push(p1);
        b.irqs.push(Irq { irq: 33, channel_id: 9, trigger: Trigger::Level });
        b.channels.push(Channel {
            ends: [ChannelEnd { pd: 0, id: 3, pp: true, notify: true }, ChannelEnd { pd: 1, id: 5, pp: false, notify: false }],
        });
        let blob = b.finish(0x4100_0000);
        let info = BootInfo::parse(&blob).unwrap();
        let mut t = vec![[Grant::None; CHANNEL_IDS]; 2];
        build(&info, &mut t).unwrap();
        assert_eq!(t[0][3], Grant::Channel { peer: 1, peer_id: 5, notify: true, pp: true });
        assert_eq!(t[1][5], Grant::Channel { peer: 0, peer_id: 3, notify: false, pp: false });
        assert_eq!(t[1][9], Grant::Irq { irq: 33 });
        assert_eq!(t[0].iter().filter(|g| **g != Grant::None).count(), 1);
        let mut c = vec![[NO_CHILD; CHANNEL_IDS]; 2];
        build_children(&info, &mut c).unwrap();
        assert_eq!(c[0][7], 1);
        assert_eq!(c[1].iter().filter(|&&x| x != NO_CHILD).count(), 0);
    }

    #[test]
    fn refuses_id_used_twice() {
        let mut b = Builder::new();
        let p0 = pd(&mut b, "a", NO_PD, 0, Range { first: 0, count: 1 });
        let p1 = pd(&mut b, "b", NO_PD, 0, Range::default());
        b.pds.push(p0);
        b.pds.push(p1);
        b.irqs.push(Irq { irq: 33, channel_id: 3, trigger: Trigger::Level });
        b.channels.push(Channel {
            ends: [ChannelEnd { pd: 0, id: 3, pp: false, notify: true }, ChannelEnd { pd: 1, id: 3, pp: false, notify: true }],
        });
        let blob = b.finish(0x4100_0000);
        let info = BootInfo::parse(&blob).unwrap();
        let mut t = vec![[Grant::None; CHANNEL_IDS]; 2];
        assert_eq!(build(&info, &mut t), Err(GrantError::DuplicateId { pd: 0, id: 3 }));
    }
}
