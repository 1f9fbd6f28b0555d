//! The starting state most end-to-end tests need, written through the API as the
//! administration and the operator would: a budget, approved providers and modules, registered
//! companies and their vouchers. [`world`] is the common one; a test that needs another says so
//! with the builder's methods, and what it then does is the test itself.
//!
//! Through the generated clients only, over the channel a test already has: nothing here knows
//! the server's crates.

use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use tonic::transport::Channel;

use crate::bearer;
use crate::requests::{
    approve_module, approve_provider, issue_vouchers, open_budget, register_company, COMPANY_A,
};
use crate::tokens::{ADMINISTRATION, OPERATOR};

/// The module of [`world`]: AG-0012's, 40 hours, general vouchers (see
/// [`approve_module`]).
pub const MODULE: &str = "AG-0012-DIGI-01";

/// What a ledger holds before a test's own requests, in the order it is written.
#[derive(Clone, Debug, Default)]
pub struct World {
    /// (year, allocated_eur)
    budgets: Vec<(i32, String)>,
    /// (provider_id, approved_from)
    providers: Vec<(String, String)>,
    /// (module_id, provider_id, approved_from)
    modules: Vec<(String, String, String)>,
    /// (enterprise_number, year)
    companies: Vec<(String, i32)>,
    /// (enterprise_number, quantity, payment_date)
    vouchers: Vec<(String, u32, String)>,
}

/// Budget 2025 of EUR 100 000.00; AG-0012 and AG-0099 approved from 2025-01-01; AG-0012's
/// [`MODULE`] from 2025-01-01; [`COMPANY_A`] registered for 2025 (400 general vouchers a
/// year). No vouchers: add them with [`World::vouchers`].
pub fn world() -> World {
    World::default()
        .budget(2025, "100000.00")
        .provider("AG-0012", "2025-01-01")
        .provider("AG-0099", "2025-01-01")
        .module(MODULE, "AG-0012", "2025-01-01")
        .company(COMPANY_A, 2025)
}

impl World {
    pub fn budget(mut self, year: i32, allocated_eur: &str) -> World {
        self.budgets.push((year, allocated_eur.to_owned()));
        self
    }

    pub fn provider(mut self, provider_id: &str, approved_from: &str) -> World {
        self.providers
            .push((provider_id.to_owned(), approved_from.to_owned()));
        self
    }

    pub fn module(mut self, module_id: &str, provider_id: &str, approved_from: &str) -> World {
        self.modules.push((
            module_id.to_owned(),
            provider_id.to_owned(),
            approved_from.to_owned(),
        ));
        self
    }

    pub fn company(mut self, enterprise_number: &str, year: i32) -> World {
        self.companies.push((enterprise_number.to_owned(), year));
        self
    }

    /// `quantity` general vouchers for `enterprise_number`, paid exactly on `payment_date`;
    /// none when `quantity` is 0.
    pub fn vouchers(mut self, enterprise_number: &str, quantity: u32, payment_date: &str) -> World {
        if quantity > 0 {
            self.vouchers.push((
                enterprise_number.to_owned(),
                quantity,
                payment_date.to_owned(),
            ));
        }
        self
    }

    /// Writes the world through `channel`: budgets, providers, modules, companies, vouchers,
    /// each accepted (a refusal is a broken fixture, and fails the test naming the request).
    pub async fn write(&self, channel: &Channel) {
        let mut administration = AdministrationServiceClient::new(channel.clone());
        for (year, allocated_eur) in &self.budgets {
            administration
                .open_budget(bearer(open_budget(*year, allocated_eur), ADMINISTRATION))
                .await
                .unwrap_or_else(|status| panic!("budget {year}: {status:?}"));
        }
        for (provider_id, approved_from) in &self.providers {
            administration
                .approve_provider(bearer(
                    approve_provider(provider_id, approved_from),
                    ADMINISTRATION,
                ))
                .await
                .unwrap_or_else(|status| panic!("provider {provider_id}: {status:?}"));
        }
        for (module_id, provider_id, approved_from) in &self.modules {
            administration
                .approve_module(bearer(
                    approve_module(module_id, provider_id, approved_from),
                    ADMINISTRATION,
                ))
                .await
                .unwrap_or_else(|status| panic!("module {module_id}: {status:?}"));
        }
        let mut operator = OperatorServiceClient::new(channel.clone());
        for (enterprise_number, year) in &self.companies {
            operator
                .register_company(bearer(register_company(enterprise_number, *year), OPERATOR))
                .await
                .unwrap_or_else(|status| {
                    panic!("registration of {enterprise_number} for {year}: {status:?}")
                });
        }
        for (enterprise_number, quantity, payment_date) in &self.vouchers {
            operator
                .issue_vouchers(bearer(
                    issue_vouchers(enterprise_number, *quantity, payment_date),
                    OPERATOR,
                ))
                .await
                .unwrap_or_else(|status| {
                    panic!("issuance of {quantity} to {enterprise_number}: {status:?}")
                });
        }
    }
}
