fn main() {
    let gpu = diffscope::Gpu::new(&Default::default()).unwrap();
    println!("{:?}", gpu.summary());
}
