//! How an op runs on the CPU backend: its kernel is a closure over its inputs' (and outputs') words,
//! run at once, or recorded when the backend is deferred (the page, [`crate::cpu::queue`]). Every
//! op's CPU branch goes through one of the two functions here, so an op never reads host memory
//! at the time it is called — only its kernel does, when it runs.

use crate::cpu::queue::Job;
use crate::error::{Error, Result};
use crate::tensor::{DType, Device, HostRead, Tensor};

fn cpu_of<'a>(op: &'static str, device: &'a Device) -> Result<&'a crate::cpu::Cpu> {
    match device {
        Device::Cpu(c) => Ok(c),
        Device::Gpu(_) => Err(Error::Internal(format!(
            "{op}: a host kernel on a GPU device"
        ))),
    }
}

/// Read-lock `reads` (the inputs, in order) and run `f` over their words.
fn with_words<'t, R>(
    reads: impl Iterator<Item = Result<HostRead<'t>>>,
    f: impl FnOnce(&[&[u32]]) -> Result<R>,
) -> Result<R> {
    let reads = reads.collect::<Result<Vec<_>>>()?;
    let words: Vec<&[u32]> = reads.iter().map(|r| r.u32()).collect();
    f(&words)
}

/// A kernel's outputs, checked to be as many as asked for.
fn counted(op: &'static str, want: usize, words: Vec<Vec<u32>>) -> Result<Vec<Vec<u32>>> {
    if words.len() != want {
        return Err(Error::Internal(format!(
            "{op}: the host kernel made {} outputs for {want}",
            words.len()
        )));
    }
    Ok(words)
}

/// An op that makes one new tensor of `shape`: `f` gets the inputs' words, in order, and returns
/// the output's (checked against the shape).
pub(crate) fn host_op<F>(
    op: &'static str,
    device: &Device,
    shape: &[usize],
    dtype: DType,
    inputs: &[&Tensor],
    f: F,
) -> Result<Tensor>
where
    F: FnOnce(&[&[u32]]) -> Result<Vec<u32>> + Send + 'static,
{
    let mut outs = host_ops(op, device, &[(shape, dtype)], inputs, move |w| {
        f(w).map(|v| vec![v])
    })?;
    outs.pop()
        .ok_or_else(|| Error::Internal(format!("{op}: no output")))
}

/// An op that makes new tensors of the given shapes: `f` gets the inputs' words, in order, and
/// returns each output's words (taken over without a copy, checked against its shape).
pub(crate) fn host_ops<F>(
    op: &'static str,
    device: &Device,
    outputs: &[(&[usize], DType)],
    inputs: &[&Tensor],
    f: F,
) -> Result<Vec<Tensor>>
where
    F: FnOnce(&[&[u32]]) -> Result<Vec<Vec<u32>>> + Send + 'static,
{
    let cpu = cpu_of(op, device)?;
    if !cpu.deferred() {
        let words = counted(
            op,
            outputs.len(),
            with_words(inputs.iter().map(|t| t.host()), f)?,
        )?;
        return words
            .into_iter()
            .zip(outputs)
            .map(|(w, &(shape, dtype))| Tensor::from_vec_words(device.clone(), shape, dtype, w))
            .collect();
    }
    let outs = outputs
        .iter()
        .map(|&(shape, dtype)| Tensor::unfilled_host(device, shape, dtype))
        .collect::<Result<Vec<_>>>()?;
    let fills = outs
        .iter()
        .map(|t| Ok((t.host_buffer()?, t.len())))
        .collect::<Result<Vec<_>>>()?;
    let skips: Vec<_> = fills.iter().map(|(b, n)| b.zeros_on_skip(*n)).collect();
    let ins: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
    let count = outputs.len();
    cpu.record(Job {
        run: Box::new(move || {
            let words = counted(op, count, with_words(ins.iter().map(Tensor::host_now), f)?)?;
            for (v, (buf, n)) in words.into_iter().zip(&fills) {
                if v.len() != *n {
                    return Err(Error::Internal(format!(
                        "{op}: the host kernel made {} values for {n}",
                        v.len()
                    )));
                }
                *buf.write()?.u32_vec() = v;
            }
            Ok(())
        }),
        skip: Some(Box::new(move || skips.into_iter().for_each(|s| s()))),
    })?;
    Ok(outs)
}

/// An op that writes given outputs (made before, so already sized): `f` gets the inputs' words
/// (an empty slice for a `None`) and the outputs' words to write.
pub(crate) fn host_op_into<F>(
    op: &'static str,
    device: &Device,
    inputs: &[Option<&Tensor>],
    outputs: &[&Tensor],
    f: F,
) -> Result<()>
where
    F: FnOnce(&[&[u32]], &mut [&mut [u32]]) -> Result<()> + Send + 'static,
{
    let cpu = cpu_of(op, device)?;
    let ins: Vec<Option<Tensor>> = inputs.iter().map(|t| t.cloned()).collect();
    let outs: Vec<Tensor> = outputs.iter().map(|t| (*t).clone()).collect();
    let run = move || -> Result<()> {
        let reads = ins
            .iter()
            .map(|t| t.as_ref().map(Tensor::host_now).transpose())
            .collect::<Result<Vec<_>>>()?;
        let words: Vec<&[u32]> = reads
            .iter()
            .map(|g| g.as_ref().map_or(&[][..], |g| g.u32()))
            .collect();
        let mut writes = outs
            .iter()
            .map(Tensor::host_now_mut)
            .collect::<Result<Vec<_>>>()?;
        let mut out_words: Vec<&mut [u32]> = writes.iter_mut().map(|w| w.u32()).collect();
        f(&words, &mut out_words)
    };
    if !cpu.deferred() {
        // Direct reads run nothing recorded: there is nothing recorded on an eager backend.
        return run();
    }
    cpu.record(Job {
        run: Box::new(run),
        skip: None,
    })
}

/// [`host_op`] for f32 in and out, the common case.
pub(crate) fn host_op_f32<F>(
    op: &'static str,
    device: &Device,
    shape: &[usize],
    inputs: &[&Tensor],
    f: F,
) -> Result<Tensor>
where
    F: FnOnce(&[&[f32]]) -> Result<Vec<f32>> + Send + 'static,
{
    host_op(op, device, shape, DType::F32, inputs, move |w| {
        let xs: Vec<&[f32]> = w.iter().map(|w| bytemuck::cast_slice(w)).collect();
        f(&xs).map(crate::tensor::words_of_f32)
    })
}
