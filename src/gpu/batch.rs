//! The open batch: dispatches, copies and clears are recorded, then submitted as one command buffer;
//! readbacks ride on the same submission.

use super::counters::Counters;
use super::kernel::Kernel;
use super::pool;
use super::{Gpu, GpuBuffer, KernelSpec, Readback, MAX_GROUPS_PER_DIM, MAX_PARAMS};
use crate::error::{Error, Result};
use std::sync::Arc;

pub(super) enum Cmd {
    Dispatch {
        kernel: Arc<Kernel>,
        bind_group: Arc<wgpu::BindGroup>,
        offset: u32,
        groups: [u32; 3],
    },
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
    Clear {
        buffer: wgpu::Buffer,
        size: u64,
    },
}

impl Gpu {
    /// Record a dispatch of `spec` over `buffers` with parameter block `params`.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        spec: &KernelSpec<'_>,
        params: &P,
        buffers: &[&GpuBuffer],
        groups: [u32; 3],
    ) -> Result<()> {
        let bytes = bytemuck::bytes_of(params);
        if bytes.len() as u64 > MAX_PARAMS {
            return Err(Error::Invalid(format!(
                "kernel {}::{} has a {}-byte parameter block; the limit is {MAX_PARAMS}",
                spec.family,
                spec.entry,
                bytes.len()
            )));
        }
        if buffers.len() != spec.bindings.len() {
            return Err(Error::Invalid(format!(
                "kernel {}::{} takes {} buffers, got {}",
                spec.family,
                spec.entry,
                spec.bindings.len(),
                buffers.len()
            )));
        }
        let max = self.0.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Invalid(format!(
                "kernel {}::{} needs {groups:?} workgroups; the device allows {max} per dimension",
                spec.family, spec.entry
            )));
        }
        if groups.contains(&0) {
            return Ok(()); // nothing to do, and a zero-sized dispatch is legal but pointless
        }
        let full = {
            let st = self.state();
            st.params.len() as u64 + self.0.param_align > self.0.param_align * self.0.arena_slots
        };
        if full {
            self.submit();
        }
        #[cfg(not(target_arch = "wasm32"))]
        let profiling = self.profiling();
        #[cfg(not(target_arch = "wasm32"))]
        if profiling {
            self.wait_idle()?;
        }
        let mut st = self.state();
        let (kernel, created) = st
            .kernels
            .kernel(&self.0.device, spec, &self.0.errors)
            .map_err(Error::Validation)?;
        if created {
            Counters::add(&self.0.counters.pipelines_created, 1);
        }
        let bufs: Vec<(&wgpu::Buffer, u64)> = buffers.iter().map(|b| (b.raw(), b.id())).collect();
        let (bind_group, bg_created) =
            st.kernels
                .bind_group(&self.0.device, &kernel, &self.0.arena, MAX_PARAMS, &bufs);
        if bg_created {
            Counters::add(&self.0.counters.bind_groups_created, 1);
        }
        let offset = st.params.len() as u32;
        st.params.extend_from_slice(bytes);
        let padded = (offset as u64 + self.0.param_align) as usize;
        st.params.resize(padded, 0);
        st.cmds.push(Cmd::Dispatch {
            kernel,
            bind_group,
            offset,
            groups,
        });
        drop(st);
        Counters::add(&self.0.counters.dispatches, 1);
        #[cfg(not(target_arch = "wasm32"))]
        if profiling {
            let t0 = std::time::Instant::now();
            self.wait_idle()?;
            let secs = t0.elapsed().as_secs_f64();
            let mut p = self.0.profile.lock().unwrap_or_else(|p| p.into_inner());
            let e = p
                .get_or_insert_with(Default::default)
                .entry(format!("{}::{}", spec.family, spec.entry))
                .or_insert((0, 0.0));
            e.0 += 1;
            e.1 += secs;
        }
        Ok(())
    }

    /// Time every dispatch on its own (native; each is submitted and waited for, so the whole run is
    /// slower, but the split between kernels is what a profile is for).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_profiling(&self, on: bool) {
        *self.0.profile.lock().unwrap_or_else(|p| p.into_inner()) = on.then(Default::default);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn profiling(&self) -> bool {
        self.0
            .profile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Kernel → (dispatches, seconds) since profiling was switched on, slowest first.
    pub fn profile_report(&self) -> Vec<(String, u64, f64)> {
        let p = self.0.profile.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = p
            .iter()
            .flatten()
            .map(|(k, &(n, s))| (k.clone(), n, s))
            .collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    /// Record a buffer-to-buffer copy.
    pub fn copy(
        &self,
        src: &GpuBuffer,
        src_offset: u64,
        dst: &GpuBuffer,
        dst_offset: u64,
        size: u64,
    ) {
        if size == 0 {
            return;
        }
        self.state().cmds.push(Cmd::Copy {
            src: src.raw().clone(),
            src_offset,
            dst: dst.raw().clone(),
            dst_offset,
            size,
        });
    }

    /// Record zero-filling `buf` (its whole capacity).
    pub fn clear(&self, buf: &GpuBuffer) {
        self.state().cmds.push(Cmd::Clear {
            buffer: buf.raw().clone(),
            size: buf.capacity(),
        });
    }

    /// Number of commands recorded and not yet submitted.
    pub fn pending(&self) -> usize {
        self.state().cmds.len()
    }

    /// Submit everything recorded so far as one command buffer. A no-op when nothing is recorded.
    pub fn submit(&self) {
        // The whole submission happens under the state lock: the parameter arena is one buffer, so two
        // threads interleaving "write arena, submit" would hand each other's parameters to the GPU.
        let mut st = self.state();
        if st.cmds.is_empty() {
            st.pool.recycle();
            return;
        }
        let cmds = std::mem::take(&mut st.cmds);
        let params = std::mem::take(&mut st.params);
        if !params.is_empty() {
            self.0.queue.write_buffer(&self.0.arena, 0, &params);
        }
        let mut enc = self
            .0
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("diffscope batch"),
            });
        let mut i = 0;
        while i < cmds.len() {
            match &cmds[i] {
                Cmd::Dispatch { .. } => {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: None,
                    });
                    while let Some(Cmd::Dispatch {
                        kernel,
                        bind_group,
                        offset,
                        groups,
                    }) = cmds.get(i)
                    {
                        pass.set_pipeline(&kernel.pipeline);
                        pass.set_bind_group(0, Some(bind_group.as_ref()), &[*offset]);
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        i += 1;
                    }
                }
                Cmd::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    size,
                } => {
                    enc.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                    i += 1;
                }
                Cmd::Clear { buffer, size } => {
                    enc.clear_buffer(buffer, 0, Some(*size));
                    i += 1;
                }
            }
        }
        self.0.queue.submit([enc.finish()]);
        Counters::add(&self.0.counters.submissions, 1);
        st.pool.recycle();
        if let Some(n) = self.0.origin.opts.lose_device_after_submissions {
            if self
                .0
                .counters
                .submissions
                .load(std::sync::atomic::Ordering::Relaxed)
                >= n
            {
                self.0.device.destroy();
            }
        }
    }

    /// Submit pending work and copy `bytes` of `buf` back to the host without blocking: poll the
    /// returned [`Readback`] each frame, `.await` it, or (native only) `wait()` on it.
    pub fn read(&self, buf: &GpuBuffer, bytes: u64) -> Readback {
        self.read_many(&[(buf, bytes)])
            .pop()
            .expect("one readback per buffer")
    }

    /// Start reading several buffers back with one submission (the step's own work included): a
    /// reverse step that also shows x̂0 and ε̂ stays one submission.
    pub fn read_many(&self, bufs: &[(&GpuBuffer, u64)]) -> Vec<Readback> {
        let staged: Vec<_> = bufs
            .iter()
            .map(|&(buf, bytes)| (self.stage_copy(buf, bytes), bytes))
            .collect();
        self.submit();
        staged
            .into_iter()
            .map(|((staging, size), bytes)| {
                Counters::add(&self.0.counters.bytes_read_back, bytes);
                Readback::start(self.clone(), staging, size, bytes)
            })
            .collect()
    }

    /// Record a copy of `buf` into a staging buffer (mapped only after the submit).
    fn stage_copy(&self, buf: &GpuBuffer, bytes: u64) -> (pool::PooledBuffer, u64) {
        let size = bytes.next_multiple_of(4).max(4);
        let max = self.0.limits.max_buffer_size & !3;
        let (staging, created) =
            self.state()
                .pool
                .acquire(&self.0.device, size, max, pool::STAGING_USAGE);
        if created {
            Counters::add(&self.0.counters.buffers_created, 1);
        }
        self.state().cmds.push(Cmd::Copy {
            src: buf.raw().clone(),
            src_offset: 0,
            dst: staging.buffer.clone(),
            dst_offset: 0,
            size,
        });
        (staging, size)
    }

    /// Block until all submitted work is done (native only; the web cannot block).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<()> {
        self.submit();
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Device(e.to_string()))
    }

    /// Drive callbacks without blocking (native; a no-op on the web where the browser does it).
    pub fn poll(&self) {
        let _ = self.0.device.poll(wgpu::PollType::Poll);
    }
    /// 1-D grid for `n` items at `per_group` items per workgroup, folded into x and y so it never
    /// exceeds the per-dimension limit. Kernels recover the index as `gid.x + gid.y * nwg.x * WG`.
    pub fn grid_1d(n: u64, per_group: u32) -> [u32; 3] {
        let groups = n.div_ceil(per_group as u64).max(1);
        if groups <= MAX_GROUPS_PER_DIM as u64 {
            [groups as u32, 1, 1]
        } else {
            let y = groups.div_ceil(MAX_GROUPS_PER_DIM as u64);
            [MAX_GROUPS_PER_DIM, y as u32, 1]
        }
    }
}
