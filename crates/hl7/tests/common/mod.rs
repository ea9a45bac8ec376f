//! What the HL7 crate's tests and benchmark share: the application on a test store with the
//! shipped catalogue and thresholds, and the interface with the demo interface file.
#![allow(dead_code)] // each test binary uses its own part

use seldinger_app::{App, SystemClock};
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::DepartmentTime;
use seldinger_hl7::{Interface, InterfaceConfig, DEMO_INTERFACE};
use seldinger_store::{testing, Store};
use std::sync::Arc;

/// The department's application on `store`, its wall clock in Europe/London.
pub fn app(store: Store) -> App {
    let safety = SafetyReference::parse(
        include_str!("../../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("shipped thresholds");
    let mut app = App::new(
        store,
        testing::records::catalogue(),
        safety,
        Arc::new(SystemClock),
    );
    app.time = DepartmentTime::parse("Europe/London").expect("zone");
    app
}

pub fn config() -> InterfaceConfig {
    InterfaceConfig::parse(DEMO_INTERFACE, "demo").expect("demo interface file")
}

/// The HL7 interface on `store` with the demo interface file.
pub fn interface(store: Store) -> Arc<Interface> {
    Arc::new(Interface::new(app(store), config()))
}
