//! What a kernel's Rust driver shares with its WGSL, written once on the Rust side.
//!
//! - Flag bits and enum codes: a driver lists its constants with [`wgsl_consts!`] and passes the
//!   declarations to the shader through [`KernelSpec::defines`](super::KernelSpec::defines), so the
//!   shader never restates a value (a shader that names a constant the driver does not declare fails
//!   to compile).
//! - Parameter blocks: [`params_layout!`] describes a `#[repr(C)]` parameter struct scalar by scalar
//!   ([`ParamsLayout`]), so a test can compare it with the WGSL struct it is read as
//!   (`tests/engine/shader_params.rs`, over [`crate::ops::kernel_params`]).

/// WGSL declarations `const NAME: u32 = VALUEu;`, one per line.
pub fn u32_consts(consts: &[(&str, u32)]) -> String {
    consts
        .iter()
        .map(|(name, value)| format!("const {name}: u32 = {value}u;\n"))
        .collect()
}

/// The WGSL declarations of Rust constants, by name: `wgsl_consts![F_CLIP, F_CFG]` declares
/// `F_CLIP` and `F_CFG` with their Rust values; `NAME = expr` declares a name of its own, e.g.
/// `ACT_SILU = Act::Silu as u32` for an enum the shader switches on.
macro_rules! wgsl_consts {
    (@value $name:ident) => {
        $name
    };
    (@value $name:ident $value:expr) => {
        $value
    };
    ($($name:ident $(= $value:expr)?),* $(,)?) => {
        $crate::gpu::wgsl::u32_consts(&[
            $((stringify!($name), $crate::gpu::wgsl::wgsl_consts!(@value $name $($value)?))),*
        ])
    };
}
pub(crate) use wgsl_consts;

/// A scalar of a parameter block, as WGSL sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    U32,
    I32,
    F32,
}

/// A type that can be a field of a parameter block: scalars and arrays of them.
pub trait ParamsField {
    /// Push (byte offset, scalar) for every scalar of the field, which starts at `offset`.
    fn scalars(offset: usize, out: &mut Vec<(usize, Scalar)>);
}

impl ParamsField for u32 {
    fn scalars(offset: usize, out: &mut Vec<(usize, Scalar)>) {
        out.push((offset, Scalar::U32));
    }
}

impl ParamsField for i32 {
    fn scalars(offset: usize, out: &mut Vec<(usize, Scalar)>) {
        out.push((offset, Scalar::I32));
    }
}

impl ParamsField for f32 {
    fn scalars(offset: usize, out: &mut Vec<(usize, Scalar)>) {
        out.push((offset, Scalar::F32));
    }
}

impl<T: ParamsField, const N: usize> ParamsField for [T; N] {
    fn scalars(offset: usize, out: &mut Vec<(usize, Scalar)>) {
        for i in 0..N {
            T::scalars(offset + i * std::mem::size_of::<T>(), out);
        }
    }
}

/// A kernel's parameter block as its driver writes it (see [`params_layout!`]).
pub trait ParamsLayout: bytemuck::Pod {
    /// (byte offset, scalar) of every scalar, padding fields included, by offset.
    fn scalars() -> Vec<(usize, Scalar)>;
}

/// The scalars of field `field` (at `offset`) of `S`; the closure only names the field's type.
pub fn push_field<S, F: ParamsField>(
    _field: impl for<'a> Fn(&'a S) -> &'a F,
    offset: usize,
    out: &mut Vec<(usize, Scalar)>,
) {
    F::scalars(offset, out);
}

/// `params_layout!(Params { a, b, _pad })` implements [`ParamsLayout`] for `Params`. Every field
/// must be named: one added to the struct but not here fails to compile.
macro_rules! params_layout {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::gpu::wgsl::ParamsLayout for $ty {
            fn scalars() -> Vec<(usize, $crate::gpu::wgsl::Scalar)> {
                // No `..`: a field left out of the list is a compile error here.
                let _exhaustive = |p: &$ty| {
                    let $ty { $($field: _),* } = p;
                };
                let mut out = Vec::new();
                $(
                    $crate::gpu::wgsl::push_field(
                        |p: &$ty| &p.$field,
                        std::mem::offset_of!($ty, $field),
                        &mut out,
                    );
                )*
                out.sort_by_key(|s| s.0);
                out
            }
        }
    };
}
pub(crate) use params_layout;
