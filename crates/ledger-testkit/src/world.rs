//! The starting state most end-to-end tests need, written through the API as the
//! administration and the operator would: a budget, approved providers and modules, registered
//! companies and their vouchers. [`world`] is the common one; a test that needs another says so
//! with the builder's methods (from [`World::default`], an empty ledger, when it shares nothing
//! with the common one), and what it then does is the test itself.
//!
//! Whatever the order of the builder's calls, a world is written in one order: budgets,
//! providers, their withdrawals, modules, their withdrawals, companies, vouchers — the order
//! the scheme needs them in (a module needs its provider, vouchers their registration).
//!
//! Through the generated clients only, over the channel a test already has: nothing here knows
//! the server's crates.

use ledger_proto::v1 as api;
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

/// What a ledger holds before a test's own requests: the requests that write it, each kind in
/// its own list, written in the order of the module doc. A request keeps the id it was built
/// with, so a world written twice to one ledger is answered from the log the second time.
#[derive(Clone, Debug, Default)]
pub struct World {
    budgets: Vec<api::OpenBudgetRequest>,
    providers: Vec<api::ApproveProviderRequest>,
    provider_withdrawals: Vec<api::WithdrawProviderRequest>,
    modules: Vec<api::ApproveModuleRequest>,
    module_withdrawals: Vec<api::WithdrawModuleRequest>,
    companies: Vec<api::RegisterCompanyRequest>,
    vouchers: Vec<api::IssueVouchersRequest>,
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

/// A request a [`World`] can hold: one of the administration's and the operator's writes that
/// make a starting state. Implemented for each of them, so [`World::with`] takes any.
pub trait WorldRequest {
    fn add_to(self, world: &mut World);
}

macro_rules! world_requests {
    ($($request:ty => $list:ident;)*) => {
        $(
            impl WorldRequest for $request {
                fn add_to(self, world: &mut World) {
                    world.$list.push(self);
                }
            }
        )*
    };
}

world_requests! {
    api::OpenBudgetRequest => budgets;
    api::ApproveProviderRequest => providers;
    api::WithdrawProviderRequest => provider_withdrawals;
    api::ApproveModuleRequest => modules;
    api::WithdrawModuleRequest => module_withdrawals;
    api::RegisterCompanyRequest => companies;
    api::IssueVouchersRequest => vouchers;
}

impl World {
    /// Adds `request` as it is: for a world that needs a field the plain methods below leave
    /// at its default (`ApproveModuleRequest { hours_max: 8, ..approve_module(…) }`), a
    /// withdrawal, or a request whose id the test keeps.
    pub fn with(mut self, request: impl WorldRequest) -> World {
        request.add_to(&mut self);
        self
    }

    pub fn budget(self, year: i32, allocated_eur: &str) -> World {
        self.with(open_budget(year, allocated_eur))
    }

    pub fn provider(self, provider_id: &str, approved_from: &str) -> World {
        self.with(approve_provider(provider_id, approved_from))
    }

    pub fn module(self, module_id: &str, provider_id: &str, approved_from: &str) -> World {
        self.with(approve_module(module_id, provider_id, approved_from))
    }

    pub fn company(self, enterprise_number: &str, year: i32) -> World {
        self.with(register_company(enterprise_number, year))
    }

    /// `quantity` general vouchers for `enterprise_number`, paid exactly on `payment_date`;
    /// none when `quantity` is 0.
    pub fn vouchers(self, enterprise_number: &str, quantity: u32, payment_date: &str) -> World {
        if quantity == 0 {
            return self;
        }
        self.with(issue_vouchers(enterprise_number, quantity, payment_date))
    }

    /// Writes the world through `channel` in the order of the module doc, each request
    /// accepted (a refusal is a broken fixture, and fails the test naming the request).
    pub async fn write(&self, channel: &Channel) {
        let mut administration = AdministrationServiceClient::new(channel.clone());
        for request in &self.budgets {
            let year = request.year;
            administration
                .open_budget(bearer(request.clone(), ADMINISTRATION))
                .await
                .unwrap_or_else(|status| panic!("budget {year}: {status:?}"));
        }
        for request in &self.providers {
            let provider_id = &request.provider_id;
            administration
                .approve_provider(bearer(request.clone(), ADMINISTRATION))
                .await
                .unwrap_or_else(|status| panic!("provider {provider_id}: {status:?}"));
        }
        for request in &self.provider_withdrawals {
            let provider_id = &request.provider_id;
            administration
                .withdraw_provider(bearer(request.clone(), ADMINISTRATION))
                .await
                .unwrap_or_else(|status| {
                    panic!("withdrawal of provider {provider_id}: {status:?}")
                });
        }
        for request in &self.modules {
            let module_id = &request.module_id;
            administration
                .approve_module(bearer(request.clone(), ADMINISTRATION))
                .await
                .unwrap_or_else(|status| panic!("module {module_id}: {status:?}"));
        }
        for request in &self.module_withdrawals {
            let module_id = &request.module_id;
            administration
                .withdraw_module(bearer(request.clone(), ADMINISTRATION))
                .await
                .unwrap_or_else(|status| panic!("withdrawal of module {module_id}: {status:?}"));
        }
        let mut operator = OperatorServiceClient::new(channel.clone());
        for request in &self.companies {
            let (enterprise_number, year) = (&request.enterprise_number, request.year);
            operator
                .register_company(bearer(request.clone(), OPERATOR))
                .await
                .unwrap_or_else(|status| {
                    panic!("registration of {enterprise_number} for {year}: {status:?}")
                });
        }
        for request in &self.vouchers {
            let (enterprise_number, quantity) = (&request.enterprise_number, request.quantity);
            operator
                .issue_vouchers(bearer(request.clone(), OPERATOR))
                .await
                .unwrap_or_else(|status| {
                    panic!("issuance of {quantity} to {enterprise_number}: {status:?}")
                });
        }
    }
}

/// Approves modules `M-<first>` … `M-<first + count - 1>` of AG-0012 (8 hours, general
/// vouchers, digital skills), one event each, from `callers` concurrent callers, so that the
/// writer commits them in groups: a load of small writes for the tests of the audit stream and
/// the metrics. AG-0012 must be approved already.
pub async fn approve_modules_concurrently(channel: &Channel, first: u32, count: u32, callers: u32) {
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let mut administration = AdministrationServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut number = first + caller;
            while number < first + count {
                let module_id = format!("M-{number}");
                let request = api::ApproveModuleRequest {
                    title: format!("module {number}"),
                    hours_max: 8,
                    ..approve_module(&module_id, "AG-0012", "2025-01-01")
                };
                administration
                    .approve_module(bearer(request, ADMINISTRATION))
                    .await
                    .unwrap_or_else(|status| panic!("module {module_id}: {status:?}"));
                number += callers;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a caller approving modules finished");
    }
}
