//! The virtualiser's end of the manager's protected-call API (`edgeos_manager_core::api`):
//! ASSIGN on the first packet of a flow to an instance service, RELEASE of an instance the
//! virtualiser dropped (idle or broken), TOUCH of active instances (so the manager's own idle
//! clock agrees), DEAD_LIST / ACK_DEAD when the manager retires instances.

use edgeos_manager_core::api::{self, ApiError, Reply, Request, DEAD_LIST_MAX, TOUCH_MAX};
use edgeos_manager_core::config::Protocol as ManagerProtocol;
use edgeos_manager_core::policy::{self, InstanceRef};
use edgeos_microkit::{get_mr, set_mr, var, Channel, MessageInfo};
use edgeos_netvirt_core::flow::{Connection, Protocol};

/// The manager, on the channel whose virtualiser end has `pp` (the manager's priority is higher).
pub struct ManagerLink {
    channel: Channel,
}

/// An ASSIGN answer.
#[derive(Clone, Copy, Debug)]
pub struct Assigned {
    pub instance: InstanceRef,
    /// Never given to the virtualiser since its fork: write its LinkInfo before notifying it.
    pub fresh: bool,
    /// The manager's pools are low: notify it when this batch is done.
    pub refill: bool,
}

impl ManagerLink {
    /// The link from the description (`manager_channel`), if there is one.
    pub fn from_description() -> Option<Self> {
        match *var!(manager_channel: usize = usize::MAX) {
            usize::MAX => None,
            id => Some(ManagerLink { channel: Channel::new(id) }),
        }
    }

    /// The channel (its notifications mean: look at the dead list).
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// Notifies the manager (its pools want refilling).
    pub fn notify(&self) {
        self.channel.notify();
    }

    fn call(&self, request: &Request) -> Result<Reply, ApiError> {
        let msg = api::encode_request(request);
        for (i, v) in msg.regs().iter().enumerate() {
            set_mr(i, *v);
        }
        let reply = self.channel.pp_call(MessageInfo::new(msg.label, msg.count));
        let count = reply.count().min(api::MAX_MRS);
        let mut mrs = [0u64; api::MAX_MRS];
        for (i, mr) in mrs.iter_mut().enumerate().take(count) {
            *mr = get_mr(i);
        }
        api::decode_reply(msg.label, reply.label(), &mrs[..count])
    }

    /// An instance of service `service` for the flow `c` (whose first packet found no route).
    pub fn assign(&self, service: u8, c: &Connection) -> Result<Assigned, ApiError> {
        let protocol = match c.protocol {
            Protocol::Udp => ManagerProtocol::Udp,
            Protocol::Tcp => ManagerProtocol::Tcp,
        };
        let request = Request::Assign(policy::Request {
            service,
            protocol,
            remote_ip: u32::from_be_bytes(c.remote_ip),
            remote_port: c.remote_port,
            local_port: c.local_port,
        });
        match self.call(&request)? {
            Reply::Assigned { instance, fresh, refill } => Ok(Assigned { instance, fresh, refill }),
            _ => Err(ApiError::BadArguments),
        }
    }

    /// The virtualiser dropped `instance` (idle, or it broke its link); the manager destroys it.
    pub fn release(&self, instance: InstanceRef) -> Result<(), ApiError> {
        self.call(&Request::Release(instance)).map(|_| ())
    }

    /// Activity on `instances` (at most 16 a call; more are sent in several calls).
    pub fn touch(&self, instances: &[InstanceRef]) {
        for chunk in instances.chunks(TOUCH_MAX) {
            let mut batch = [InstanceRef::new(0, 0); TOUCH_MAX];
            batch[..chunk.len()].copy_from_slice(chunk);
            // An instance that is no longer assigned is only counted by the manager.
            let _ = self.call(&Request::Touch { count: chunk.len(), instances: batch });
        }
    }

    /// Instances the manager retires, and how many are on its list in all.
    pub fn dead_list(&self, out: &mut [InstanceRef; DEAD_LIST_MAX]) -> Result<(usize, usize), ApiError> {
        match self.call(&Request::DeadList)? {
            Reply::DeadList { count, total, instances } => {
                let n = count.min(DEAD_LIST_MAX);
                out[..n].copy_from_slice(&instances[..n]);
                Ok((n, total))
            }
            _ => Err(ApiError::BadArguments),
        }
    }

    /// The virtualiser no longer touches `instance`; the manager may destroy it.
    pub fn ack_dead(&self, instance: InstanceRef) -> Result<(), ApiError> {
        self.call(&Request::AckDead(instance)).map(|_| ())
    }
}
