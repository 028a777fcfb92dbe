//! Every shader's binding-0 parameter block against the Rust struct its driver writes
//! (`diffscope::ops::kernel_params`): each shader is parsed with naga, as its pipeline compiles it
//! (the driver's constants prepended), and the uniform struct's size and scalars (offset and type)
//! must equal the Rust struct's. A field added, removed, retyped or moved on one side only fails
//! here; a constant the shader names but the driver does not declare fails to parse.

use diffscope::gpu::wgsl::Scalar;
use diffscope::ops::kernel_params;
use naga::{AddressSpace, ArraySize, Handle, Module, ScalarKind, Type, TypeInner};
use std::collections::BTreeSet;

/// (byte offset, scalar) of every scalar of `ty`, which starts at `offset`.
fn flatten(m: &Module, ty: Handle<Type>, offset: usize, out: &mut Vec<(usize, Scalar)>) {
    let scalar = |s: naga::Scalar| {
        assert_eq!(s.width, 4, "only 32-bit scalars in parameter blocks");
        match s.kind {
            ScalarKind::Uint => Scalar::U32,
            ScalarKind::Sint => Scalar::I32,
            ScalarKind::Float => Scalar::F32,
            k => panic!("no {k:?} in parameter blocks"),
        }
    };
    match &m.types[ty].inner {
        TypeInner::Scalar(s) => out.push((offset, scalar(*s))),
        TypeInner::Vector { size, scalar: s } => {
            for i in 0..*size as usize {
                out.push((offset + 4 * i, scalar(*s)));
            }
        }
        TypeInner::Array {
            base,
            size: ArraySize::Constant(n),
            stride,
        } => {
            for i in 0..n.get() as usize {
                flatten(m, *base, offset + i * *stride as usize, out);
            }
        }
        TypeInner::Struct { members, .. } => {
            for mb in members {
                flatten(m, mb.ty, offset + mb.offset as usize, out);
            }
        }
        other => panic!("unexpected type in a parameter block: {other:?}"),
    }
}

/// A uniform struct as the WGSL lays it out: name, size, (offset, scalar) of each scalar.
type WgslStruct = (String, usize, Vec<(usize, Scalar)>);

/// The uniform structs bound at group 0, binding 0.
fn binding0_structs(m: &Module) -> Vec<WgslStruct> {
    let mut found = Vec::new();
    for (_, g) in m.global_variables.iter() {
        let at0 = g
            .binding
            .as_ref()
            .is_some_and(|b| b.group == 0 && b.binding == 0);
        if g.space != AddressSpace::Uniform || !at0 {
            continue;
        }
        let t = &m.types[g.ty];
        let TypeInner::Struct { span, .. } = t.inner else {
            panic!("binding 0 is not a struct: {t:?}");
        };
        let mut scalars = Vec::new();
        flatten(m, g.ty, 0, &mut scalars);
        scalars.sort_by_key(|s| s.0);
        let name = t.name.clone().unwrap_or_default();
        found.push((name, span as usize, scalars));
    }
    found
}

#[test]
fn every_parameter_block_matches_its_rust_struct() {
    let entries = kernel_params();
    let mut checked = BTreeSet::new();
    for e in &entries {
        let module = naga::front::wgsl::parse_str(&e.wgsl).unwrap_or_else(|err| {
            panic!(
                "{:?} does not parse as compiled:\n{}",
                e.shaders,
                err.emit_to_string(&e.wgsl)
            )
        });
        let structs = binding0_structs(&module);
        let Some((_, size, scalars)) = structs.iter().find(|s| s.0 == e.wgsl_struct) else {
            panic!(
                "{:?} has no uniform struct {} at binding 0 (it has {:?})",
                e.shaders,
                e.wgsl_struct,
                structs.iter().map(|s| &s.0).collect::<Vec<_>>()
            );
        };
        assert_eq!(
            *size, e.size,
            "{:?}: WGSL {} is {size} bytes, Rust {} is {}",
            e.shaders, e.wgsl_struct, e.rust_struct, e.size
        );
        assert_eq!(
            scalars, &e.scalars,
            "{:?}: WGSL {} and Rust {} differ, as (offset, scalar)",
            e.shaders, e.wgsl_struct, e.rust_struct
        );
        // Every binding-0 struct of a shader must be listed (checked once all entries are seen).
        for (name, ..) in &structs {
            checked.insert((e.shaders.last().copied().unwrap_or(""), name.clone()));
        }
    }
    let listed: BTreeSet<_> = entries
        .iter()
        .map(|e| {
            (
                e.shaders.last().copied().unwrap_or(""),
                e.wgsl_struct.to_string(),
            )
        })
        .collect();
    let unlisted: Vec<_> = checked.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "binding-0 structs with no Rust counterpart in kernel_params: {unlisted:?}"
    );
    // Every shader file belongs to some kernel.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".wgsl"))
        .collect();
    let covered: BTreeSet<String> = entries
        .iter()
        .flat_map(|e| e.shaders.iter().map(|s| s.to_string()))
        .collect();
    let missing: Vec<_> = files.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "shaders with no entry in kernel_params: {missing:?}"
    );
}
