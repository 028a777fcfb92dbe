//! The browser entry point: `index.html` loads the wasm module and calls `start(canvas)`. The app is
//! the same [`crate::app::DiffscopeApp`] as on the desktop. Where the browser grants a WebGPU adapter
//! the UI draws and computes on it (unless it is a software rasteriser: then the CPU backend computes); elsewhere wgpu's WebGL2 backend draws the UI and compute runs on
//! the CPU backend (WebGL2 has no compute shaders).

use wasm_bindgen::prelude::*;

/// A handle JavaScript holds on the running app.
#[wasm_bindgen]
pub struct WebHandle {
    runner: eframe::WebRunner,
}

#[wasm_bindgen]
impl WebHandle {
    #[allow(clippy::new_without_default)]
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        eframe::WebLogger::init(log::LevelFilter::Info).ok();
        WebHandle {
            runner: eframe::WebRunner::new(),
        }
    }

    /// Start the app on `canvas` with the model the page's `?model=` names (else the default) and
    /// the settings the rest of the link carries. Fails
    /// (with a message the page shows) when the browser offers neither WebGPU nor WebGL2.
    #[wasm_bindgen]
    pub async fn start(&self, canvas: web_sys::HtmlCanvasElement) -> Result<(), JsValue> {
        let mut options = eframe::WebOptions::default();
        let mut setup = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
        // WebGPU when the browser grants an adapter (wgpu asks for one first), else WebGL2.
        setup.instance_descriptor.backends = wgpu::Backends::BROWSER_WEBGPU | wgpu::Backends::GL;
        setup.device_descriptor = std::sync::Arc::new(|adapter| wgpu::DeviceDescriptor {
            label: Some("diffscope web"),
            required_limits: adapter.limits(),
            ..Default::default()
        });
        options.wgpu_options.wgpu_setup = eframe::egui_wgpu::WgpuSetup::CreateNew(setup);
        // `?model=NAME` opens that shipped model, with the settings the rest of the link carries
        // (`app::Link`: seed, sampler, steps, guidance, label, n, …; links and the browser tests).
        let query = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        let link = crate::app::Link::parse(&query);
        // `?lesson=NAME&lesson_step=K` opens a lesson, whose step names the model; a page without
        // a link opens where this browser last left off (local storage), else the default model.
        let start = match link.opens() {
            Some(model) => crate::app::Start::Shipped(model),
            None if link == crate::app::Link::default() => crate::app::Start::Last,
            None => crate::app::Start::Shipped(crate::pipelines::zoo::DEFAULT_MODEL.to_string()),
        };
        self.runner
            .start(
                canvas,
                options,
                Box::new(move |cc| {
                    // `backend=gpu|cpu` overrides where the page computes.
                    let wanted = link
                        .backend
                        .as_deref()
                        .and_then(|b| crate::tensor::DeviceOptions::parse_backend(b).ok())
                        .flatten();
                    let app = crate::app::DiffscopeApp::with_start_on(cc, start, wanted);
                    Ok(Box::new(if link == crate::app::Link::default() {
                        app
                    } else {
                        app.with_link(link)
                    }))
                }),
            )
            .await
    }

    /// The app's state as JSON (see `DiffscopeApp::status_json`), for the page and browser tests.
    #[wasm_bindgen]
    pub fn status(&self) -> String {
        self.runner
            .app_mut::<crate::app::DiffscopeApp>()
            .map_or_else(|| "null".to_string(), |app| app.status_json())
    }

    /// Fetch a failed model download again (what the side panel's Retry button does; for tests).
    #[wasm_bindgen]
    pub fn retry_download(&self) {
        if let Some(mut app) = self.runner.app_mut::<crate::app::DiffscopeApp>() {
            app.retry_download();
        }
    }

    #[wasm_bindgen]
    pub fn destroy(&self) {
        self.runner.destroy();
    }
}
