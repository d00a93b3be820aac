//! Helpers shared by the devnet test binaries.

use std::sync::OnceLock;

use lightchain_aivm::proof::ParamsCache;
use lightchain_devnet::DevnetConfig;
use lightchain_test_utils::{params_dir, template_dir};

/// The package of a template, built once per test binary.
pub fn package(template: &str) -> Vec<u8> {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(b) = cache.lock().unwrap().get(template) {
        return b.clone();
    }
    let dir = lightchain_test_utils::template_project(template);
    let (bytes, _) = lightchain_packager::build(
        dir.path(),
        &ParamsCache { dir: params_dir() },
        false,
        &mut |_| {},
    )
    .unwrap();
    cache.lock().unwrap().insert(template.into(), bytes.clone());
    bytes
}

pub fn input(template: &str, file: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(template_dir(template).join("tests").join(file)).unwrap(),
    )
    .unwrap()
}

pub fn config() -> DevnetConfig {
    DevnetConfig::test().with_params_dir(params_dir())
}
