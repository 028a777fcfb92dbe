//! The device handle's accessors, a device shared with someone else (eframe), and the errors wgpu
//! reports after the fact (validation outside an error scope, a lost device).

use super::counters::{CounterSnapshot, Counters};
use super::{adapter::check_requirements, AdapterSummary, Gpu, Inner, Origin, State};
use super::{ARENA_SLOTS, MAX_PARAMS};
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Errors wgpu reports outside an error scope, and whether the device is lost. Written by wgpu's
/// callbacks (any thread), read by [`Gpu::check`].
#[derive(Default)]
pub(crate) struct DeviceErrors {
    /// The first uncaptured error since the last `check`, and how many followed it.
    first: Mutex<Option<(String, u64)>>,
    lost: Mutex<Option<String>>,
}

impl DeviceErrors {
    /// Keep the first error (later ones are usually its consequences) and count the rest.
    pub(crate) fn record(&self, text: String) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *first {
            Some((_, more)) => *more += 1,
            None => *first = Some((text, 0)),
        }
    }
}

/// An error and its causes on one line: wgpu's own message says only "Validation Error"; the cause
/// (which resource, which usage conflict) is in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    let mut text: Vec<String> = Vec::new();
    for p in parts {
        let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
        if !p.is_empty() && !text.iter().any(|t| t.contains(&p)) {
            text.push(p);
        }
    }
    text.join(": ")
}

impl Gpu {
    /// Share a device someone else opened (eframe's, in the app). Its limits must meet diffscope's
    /// needs: open it with the adapter's own limits.
    pub fn from_device(
        info: wgpu::AdapterInfo,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<Gpu> {
        let limits = device.limits();
        check_requirements(&info, &limits)?;
        // Before anything is created: wgpu's default handler panics on the first validation error.
        let errors = Arc::new(DeviceErrors::default());
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let text = error_chain(&e);
            log::error!("wgpu: {text}");
            sink.record(text);
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            log::error!("wgpu: device lost ({reason:?}): {msg}");
            let why = match reason {
                wgpu::DeviceLostReason::Destroyed => "destroyed".to_string(),
                wgpu::DeviceLostReason::Unknown if msg.is_empty() => {
                    "driver reset or GPU removed".into()
                }
                wgpu::DeviceLostReason::Unknown => msg,
            };
            *sink.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        });
        let param_align = (limits.min_uniform_buffer_offset_alignment as u64).max(MAX_PARAMS);
        let arena_slots = ARENA_SLOTS.min(limits.max_buffer_size / param_align).max(1);
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("diffscope params arena"),
            size: param_align * arena_slots,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let adapter_features = device.features();
        Ok(Gpu(Arc::new(Inner {
            device,
            queue,
            adapter_features,
            info,
            limits,
            arena,
            param_align,
            counters: Counters::default(),
            state: Mutex::new(State::default()),
            profile: Mutex::new(None),
            arena_slots,
            errors,
            origin: Origin::default(),
        })))
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.0.device
    }
    pub fn queue(&self) -> &wgpu::Queue {
        &self.0.queue
    }
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.0.info
    }
    /// The same device handle (clones of one `Gpu`), not merely the same adapter.
    pub fn same(&self, other: &Gpu) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
    pub fn summary(&self) -> AdapterSummary {
        (&self.0.info).into()
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.0.limits
    }
    pub fn counters(&self) -> CounterSnapshot {
        self.0.counters.snapshot()
    }
    /// Is this a software rasteriser (lavapipe, SwiftShader, WARP)?
    pub fn is_software(&self) -> bool {
        matches!(self.0.info.device_type, wgpu::DeviceType::Cpu)
    }

    /// The first error wgpu reported outside an error scope since the last call, if any (taken).
    pub fn take_error(&self) -> Option<String> {
        let first = self
            .0
            .errors
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        first.map(|(e, more)| match more {
            0 => e,
            n => format!("{e} (and {n} more errors)"),
        })
    }

    /// Why the device was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.0
            .errors
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Surface what wgpu reported asynchronously: a lost device, or a validation error that no error
    /// scope caught (the results since then may be wrong). Call it after each step that the user
    /// will see.
    pub fn check(&self) -> Result<()> {
        if let Some(why) = self.lost() {
            return Err(Error::DeviceLost(why));
        }
        match self.take_error() {
            Some(e) => Err(Error::Validation(e)),
            None => Ok(()),
        }
    }
    /// A tuning decision for `key` made earlier in this process, if any.
    pub fn tuned(&self, key: &str) -> Option<String> {
        self.state().tuned.get(key).cloned()
    }

    pub fn set_tuned(&self, key: &str, value: &str) {
        self.state()
            .tuned
            .insert(key.to_string(), value.to_string());
    }
}
