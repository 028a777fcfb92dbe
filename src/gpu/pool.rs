//! Buffers pooled by size class. Every tensor's storage comes from here and goes back here on drop, so
//! a reverse step that allocates the same temporaries every time creates no buffer after warm-up.
//!
//! A released buffer is *retired* until the next submission: commands recorded but not yet submitted may
//! still read it, and `queue.write_buffer` into a reused buffer would land before those commands run.

use std::collections::HashMap;

/// Storage buffers all carry the same usages so any pooled buffer can serve any tensor.
pub(crate) const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

pub(crate) const STAGING_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);

/// Four classes per octave (x1, x1.25, x1.5, x1.75), never below 256 bytes: at most 25 % waste.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let e = 63 - (bytes - 1).leading_zeros() as u64; // floor(log2(bytes-1))
    let base = 1u64 << e;
    for quarter in 4..=8 {
        let c = base * quarter / 4;
        if c >= bytes {
            return c;
        }
    }
    base * 2
}

#[derive(Clone)]
pub(crate) struct PooledBuffer {
    pub buffer: wgpu::Buffer,
    pub id: u64,
    pub class: u64,
    pub usage: wgpu::BufferUsages,
}

#[derive(Default)]
pub(crate) struct BufferPool {
    free: HashMap<(u64, u32), Vec<PooledBuffer>>,
    retired: Vec<PooledBuffer>,
    next_id: u64,
}

impl BufferPool {
    /// A buffer of at least `bytes` (at most `max`, the device's limit, which `bytes` must not
    /// exceed), and whether it had to be created.
    pub fn acquire(
        &mut self,
        device: &wgpu::Device,
        bytes: u64,
        max: u64,
        usage: wgpu::BufferUsages,
    ) -> (PooledBuffer, bool) {
        // A size class past the limit would be an invalid buffer; the limit itself is a class then.
        let class = size_class(bytes).min(max.max(bytes.next_multiple_of(4)));
        if let Some(b) = self
            .free
            .get_mut(&(class, usage.bits()))
            .and_then(|v| v.pop())
        {
            return (b, false);
        }
        self.next_id += 1;
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("diffscope pooled"),
            size: class,
            usage,
            mapped_at_creation: false,
        });
        (
            PooledBuffer {
                buffer,
                id: self.next_id,
                class,
                usage,
            },
            true,
        )
    }

    pub fn release(&mut self, b: PooledBuffer) {
        self.retired.push(b);
    }

    /// Called after each submission: retired buffers become reusable.
    ///
    /// Each free list is kept sorted so that `acquire` always hands out the oldest free buffer of a
    /// class. Then which buffer a tensor gets depends only on *which* buffers are free, not on the
    /// order they were dropped in, so a reverse step that repeats the same allocations meets the same
    /// buffers again and its bind groups come from the cache. (A plain stack permutes the buffers
    /// from step to step: a UNet step created ~240 bind groups every time.)
    pub fn recycle(&mut self) {
        if self.retired.is_empty() {
            return;
        }
        let mut touched = Vec::new();
        for b in self.retired.drain(..) {
            let key = (b.class, b.usage.bits());
            self.free.entry(key).or_default().push(b);
            touched.push(key);
        }
        touched.sort_unstable();
        touched.dedup();
        for key in touched {
            if let Some(list) = self.free.get_mut(&key) {
                // Descending ids: `pop` takes the lowest.
                list.sort_unstable_by_key(|b| std::cmp::Reverse(b.id));
            }
        }
    }

    /// Drop every free buffer (e.g. after switching models).
    pub fn trim(&mut self) {
        self.free.clear();
    }

    pub fn free_bytes(&self) -> u64 {
        self.free.values().flatten().map(|b| b.class).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_and_waste_little() {
        for bytes in [
            1u64,
            4,
            255,
            256,
            257,
            320,
            321,
            1000,
            4096,
            5000,
            1 << 20,
            (1 << 20) + 1,
        ] {
            let c = size_class(bytes);
            assert!(c >= bytes && c >= 256, "{bytes} -> {c}");
            assert!(
                bytes <= 256 || (c as f64) <= bytes as f64 * 1.25 + 1.0,
                "{bytes} -> {c}"
            );
            assert_eq!(c % 16, 0);
        }
    }
}
