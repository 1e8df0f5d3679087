//! Rust types and traits generated from the skill WIT world.

wasmtime::component::bindgen!({
    path: "../../proto/wit",
    world: "skill",
    imports: { default: async },
    exports: { default: async },
});
