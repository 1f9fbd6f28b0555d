//! Hostile input: random protobuf bytes, mutated encodings of valid requests, and random field
//! values, thrown at every RPC's decode-and-validate path. Whatever arrives, the path never
//! panics and always ends in an answer or a status: `prost` decodes, then the same `wire`
//! functions the services use parse the fields, the domain's `authorize` and `decide` run
//! against a small ledger (a budget, two providers, a module, a company with vouchers, a
//! redemption), accepted events are applied to a copy of the state and of the
//! projections and go through the stored encoding and back, and every refusal becomes a status
//! through `status::refusal_status`, with the API's `ErrorInfo` and never a national register
//! number.
//!
//! Each property runs [`CASES`] cases: the pure path takes well under a millisecond per case,
//! so the three properties take seconds.

use chrono::NaiveDate;
use ledger_domain::event::HoursRedeemed;
use ledger_domain::{
    Command, Context, Event, LedgerState, PolicyTable, Principal, PseudonymKey, Refusal,
};
use ledger_projections::Projections;
use ledger_proto::event::v1::{LegalForm, Region, Theme, TraineeStatus, VoucherType};
use ledger_proto::v1 as api;
use ledger_server::audit::EventFilter;
use ledger_server::status::{refusal_status, ERROR_DOMAIN};
use ledger_server::wire;
use proptest::prelude::*;
use prost::Message;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Cases per property.
const CASES: u32 = 10_000;

const PROVIDER: &str = "AG-0012";
const OTHER_PROVIDER: &str = "AG-0099";
const MODULE: &str = "AG-0012-AI-01";
const COMPANY: &str = "0403.019.261";
/// Valid, and registered by no step of the small ledger.
const OTHER_COMPANY: &str = "0202.239.951";
const NISS: &str = "85.07.30-033.28";
const REDEMPTION: &str = "3f0c2a9e-5b1d-4e8f-9a6c-7d2e1b0f4c11";

/// Every RPC of `voucherledger.v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    OpenBudget,
    AdjustBudget,
    ApproveProvider,
    WithdrawProvider,
    ApproveModule,
    WithdrawModule,
    RegisterCompany,
    IssueVouchers,
    ExpireVouchers,
    RecordPayout,
    RedeemHours,
    ReverseRedemption,
    GetWallet,
    GetStatement,
    GetBudget,
    GetYearSummary,
    GetCompanies,
    GetTrainingHours,
    GetTrialBalance,
    ReadEvents,
    Subscribe,
    GetHead,
    Backup,
}

const RPCS: [Rpc; 23] = [
    Rpc::OpenBudget,
    Rpc::AdjustBudget,
    Rpc::ApproveProvider,
    Rpc::WithdrawProvider,
    Rpc::ApproveModule,
    Rpc::WithdrawModule,
    Rpc::RegisterCompany,
    Rpc::IssueVouchers,
    Rpc::ExpireVouchers,
    Rpc::RecordPayout,
    Rpc::RedeemHours,
    Rpc::ReverseRedemption,
    Rpc::GetWallet,
    Rpc::GetStatement,
    Rpc::GetBudget,
    Rpc::GetYearSummary,
    Rpc::GetCompanies,
    Rpc::GetTrainingHours,
    Rpc::GetTrialBalance,
    Rpc::ReadEvents,
    Rpc::Subscribe,
    Rpc::GetHead,
    Rpc::Backup,
];

impl Rpc {
    /// The principal the service would accept for it (`may_call`), so that a case reaches the
    /// domain's rules rather than stopping at the role check.
    fn principal(self) -> Principal {
        match self {
            Rpc::OpenBudget
            | Rpc::AdjustBudget
            | Rpc::ApproveProvider
            | Rpc::WithdrawProvider
            | Rpc::ApproveModule
            | Rpc::WithdrawModule => Principal::Administration,
            Rpc::RedeemHours | Rpc::ReverseRedemption | Rpc::GetStatement => {
                Principal::parse(&format!("provider:{PROVIDER}")).expect("a provider principal")
            }
            Rpc::ReadEvents | Rpc::Subscribe | Rpc::GetHead | Rpc::Backup => Principal::Auditor,
            _ => Principal::Operator,
        }
    }
}

/// The other principals a case may act as, to reach `authorize`'s refusals too.
fn principals() -> [Principal; 5] {
    [
        Principal::Administration,
        Principal::Operator,
        Principal::Auditor,
        Principal::parse(&format!("provider:{PROVIDER}")).expect("a provider principal"),
        Principal::parse(&format!("provider:{OTHER_PROVIDER}")).expect("a provider principal"),
    ]
}

fn as_of(position: Option<u64>, date: Option<&str>) -> Option<api::AsOf> {
    let point = match (position, date) {
        (Some(position), _) => Some(api::as_of::Point::Position(position)),
        (None, Some(date)) => Some(api::as_of::Point::Date(date.to_owned())),
        (None, None) => None,
    };
    point.map(|point| api::AsOf { point: Some(point) })
}

/// A valid encoding of a request of `rpc`, valid in the small ledger: the seed of mutations.
fn valid_request(rpc: Rpc) -> Vec<u8> {
    let request_id = "8a7d6c5b-4e3f-4a1b-9c8d-2e1f0a9b8c77".to_owned();
    match rpc {
        Rpc::OpenBudget => api::OpenBudgetRequest {
            request_id,
            year: 2026,
            allocated_eur: "7657000.00".to_owned(),
        }
        .encode_to_vec(),
        Rpc::AdjustBudget => api::AdjustBudgetRequest {
            request_id,
            year: 2025,
            allocated_eur: "7000000.00".to_owned(),
            reason: "budget revised".to_owned(),
        }
        .encode_to_vec(),
        Rpc::ApproveProvider => api::ApproveProviderRequest {
            request_id,
            provider_id: "AG-0100".to_owned(),
            name: "Formations Meuse".to_owned(),
            approved_from: "2025-01-01".to_owned(),
            approved_until: "2025-12-31".to_owned(),
        }
        .encode_to_vec(),
        Rpc::WithdrawProvider => api::WithdrawProviderRequest {
            request_id,
            provider_id: OTHER_PROVIDER.to_owned(),
            withdrawn_from: "2025-07-01".to_owned(),
            reason: "conditions no longer met".to_owned(),
        }
        .encode_to_vec(),
        Rpc::ApproveModule => api::ApproveModuleRequest {
            request_id,
            module_id: "AG-0012-LANG-01".to_owned(),
            provider_id: PROVIDER.to_owned(),
            title: "Dutch for the workshop".to_owned(),
            hours_max: 30,
            accepted_voucher_types: vec![VoucherType::Languages as i32],
            themes: vec![Theme::Languages as i32],
            approved_from: "2025-01-01".to_owned(),
            approved_until: String::new(),
        }
        .encode_to_vec(),
        Rpc::WithdrawModule => api::WithdrawModuleRequest {
            request_id,
            module_id: MODULE.to_owned(),
            withdrawn_from: "2025-09-01".to_owned(),
            reason: "no longer offered".to_owned(),
        }
        .encode_to_vec(),
        Rpc::RegisterCompany => api::RegisterCompanyRequest {
            request_id,
            enterprise_number: OTHER_COMPANY.to_owned(),
            year: 2025,
            name: "Meuse Numérique SRL".to_owned(),
            legal_form: LegalForm::CommercialCompany as i32,
            region: Region::WalloniaFrenchSpeaking as i32,
            fte: "12".to_owned(),
            turnover_eur: "1000000.00".to_owned(),
            balance_sheet_total_eur: "500000.00".to_owned(),
            autonomous: true,
            secondary_activity_months: 0,
            nace_sector: "62.01".to_owned(),
            registered_on: "2025-01-05".to_owned(),
        }
        .encode_to_vec(),
        Rpc::IssueVouchers => api::IssueVouchersRequest {
            request_id,
            enterprise_number: COMPANY.to_owned(),
            voucher_type: VoucherType::General as i32,
            quantity: 100,
            paid_amount_eur: "1500.00".to_owned(),
            payment_date: "2025-03-10".to_owned(),
            payment_reference: "VIR-2025-0001".to_owned(),
        }
        .encode_to_vec(),
        Rpc::ExpireVouchers => api::ExpireVouchersRequest {
            request_id,
            as_of: "2025-12-31".to_owned(),
        }
        .encode_to_vec(),
        Rpc::RecordPayout => api::RecordPayoutRequest {
            request_id,
            provider_id: PROVIDER.to_owned(),
            amount_eur: "30.00".to_owned(),
            payout_date: "2025-07-01".to_owned(),
            payout_reference: "PAY-2025-0001".to_owned(),
        }
        .encode_to_vec(),
        Rpc::RedeemHours => api::RedeemHoursRequest {
            request_id,
            provider_id: PROVIDER.to_owned(),
            module_id: MODULE.to_owned(),
            enterprise_number: COMPANY.to_owned(),
            national_number: NISS.to_owned(),
            trainee_status: TraineeStatus::Employee as i32,
            voucher_type: VoucherType::General as i32,
            hours: "3".to_owned(),
            training_date: "2025-06-01".to_owned(),
            usage_code: String::new(),
        }
        .encode_to_vec(),
        Rpc::ReverseRedemption => api::ReverseRedemptionRequest {
            request_id,
            provider_id: PROVIDER.to_owned(),
            redemption_id: REDEMPTION.to_owned(),
            reason: "training cancelled".to_owned(),
            reversed_on: "2025-06-20".to_owned(),
        }
        .encode_to_vec(),
        Rpc::GetWallet => api::GetWalletRequest {
            enterprise_number: COMPANY.to_owned(),
            as_of: as_of(None, Some("2025-06-01")),
        }
        .encode_to_vec(),
        Rpc::GetStatement => api::GetStatementRequest {
            provider_id: PROVIDER.to_owned(),
            as_of: as_of(Some(3), None),
        }
        .encode_to_vec(),
        Rpc::GetBudget => api::GetBudgetRequest {
            year: 2025,
            as_of: None,
        }
        .encode_to_vec(),
        Rpc::GetYearSummary => api::GetYearSummaryRequest {
            year: 2025,
            as_of: None,
        }
        .encode_to_vec(),
        Rpc::GetCompanies => api::GetCompaniesRequest {
            year: 2025,
            as_of: None,
        }
        .encode_to_vec(),
        Rpc::GetTrainingHours => api::GetTrainingHoursRequest {
            year: 2025,
            as_of: None,
        }
        .encode_to_vec(),
        Rpc::GetTrialBalance => api::GetTrialBalanceRequest {
            as_of: as_of(Some(5), None),
        }
        .encode_to_vec(),
        Rpc::ReadEvents => api::ReadEventsRequest {
            from_position: 1,
            limit: 100,
        }
        .encode_to_vec(),
        Rpc::Subscribe => api::SubscribeRequest {
            from_position: 1,
            filter: Some(api::SubscribeFilter {
                stream_prefixes: vec!["company/".to_owned()],
                event_types: vec!["VouchersIssued".to_owned()],
            }),
        }
        .encode_to_vec(),
        Rpc::GetHead => api::GetHeadRequest {}.encode_to_vec(),
        Rpc::Backup => api::BackupRequest {
            target_dir: "/var/backups/ledger".to_owned(),
        }
        .encode_to_vec(),
    }
}

/// Random field values for one request of any RPC: each request takes the fields it needs.
#[derive(Clone, Debug)]
struct Fields {
    texts: Vec<String>,
    numbers: Vec<i32>,
    counts: Vec<u32>,
    flag: bool,
    enums: Vec<i32>,
    principal: usize,
}

impl Fields {
    fn text(&self, index: usize) -> String {
        self.texts[index % self.texts.len()].clone()
    }
    fn number(&self, index: usize) -> i32 {
        self.numbers[index % self.numbers.len()]
    }
    fn count(&self, index: usize) -> u32 {
        self.counts[index % self.counts.len()]
    }
    fn as_of(&self) -> Option<api::AsOf> {
        match self.count(3) % 3 {
            0 => None,
            1 => as_of(Some(u64::from(self.count(2))), None),
            _ => as_of(None, Some(&self.text(13))),
        }
    }

    /// The request of `rpc` made of these values, encoded.
    fn request(&self, rpc: Rpc) -> Vec<u8> {
        let t = |index| self.text(index);
        match rpc {
            Rpc::OpenBudget => api::OpenBudgetRequest {
                request_id: t(0),
                year: self.number(0),
                allocated_eur: t(1),
            }
            .encode_to_vec(),
            Rpc::AdjustBudget => api::AdjustBudgetRequest {
                request_id: t(0),
                year: self.number(0),
                allocated_eur: t(1),
                reason: t(2),
            }
            .encode_to_vec(),
            Rpc::ApproveProvider => api::ApproveProviderRequest {
                request_id: t(0),
                provider_id: t(1),
                name: t(2),
                approved_from: t(3),
                approved_until: t(4),
            }
            .encode_to_vec(),
            Rpc::WithdrawProvider => api::WithdrawProviderRequest {
                request_id: t(0),
                provider_id: t(1),
                withdrawn_from: t(3),
                reason: t(2),
            }
            .encode_to_vec(),
            Rpc::ApproveModule => api::ApproveModuleRequest {
                request_id: t(0),
                module_id: t(5),
                provider_id: t(1),
                title: t(2),
                hours_max: self.count(0),
                accepted_voucher_types: self.enums.clone(),
                themes: self.enums.iter().rev().copied().collect(),
                approved_from: t(3),
                approved_until: t(4),
            }
            .encode_to_vec(),
            Rpc::WithdrawModule => api::WithdrawModuleRequest {
                request_id: t(0),
                module_id: t(5),
                withdrawn_from: t(3),
                reason: t(2),
            }
            .encode_to_vec(),
            Rpc::RegisterCompany => api::RegisterCompanyRequest {
                request_id: t(0),
                enterprise_number: t(6),
                year: self.number(0),
                name: t(2),
                legal_form: self.number(1),
                region: self.number(2),
                fte: t(7),
                turnover_eur: t(1),
                balance_sheet_total_eur: t(8),
                autonomous: self.flag,
                secondary_activity_months: self.count(1),
                nace_sector: t(9),
                registered_on: t(3),
            }
            .encode_to_vec(),
            Rpc::IssueVouchers => api::IssueVouchersRequest {
                request_id: t(0),
                enterprise_number: t(6),
                voucher_type: self.number(1),
                quantity: self.count(0),
                paid_amount_eur: t(1),
                payment_date: t(3),
                payment_reference: t(2),
            }
            .encode_to_vec(),
            Rpc::ExpireVouchers => api::ExpireVouchersRequest {
                request_id: t(0),
                as_of: t(3),
            }
            .encode_to_vec(),
            Rpc::RecordPayout => api::RecordPayoutRequest {
                request_id: t(0),
                provider_id: t(1),
                amount_eur: t(8),
                payout_date: t(3),
                payout_reference: t(2),
            }
            .encode_to_vec(),
            Rpc::RedeemHours => api::RedeemHoursRequest {
                request_id: t(0),
                provider_id: t(1),
                module_id: t(5),
                enterprise_number: t(6),
                national_number: t(10),
                trainee_status: self.number(2),
                voucher_type: self.number(1),
                hours: t(11),
                training_date: t(3),
                usage_code: String::new(),
            }
            .encode_to_vec(),
            Rpc::ReverseRedemption => api::ReverseRedemptionRequest {
                request_id: t(0),
                provider_id: t(1),
                redemption_id: t(12),
                reason: t(2),
                reversed_on: t(3),
            }
            .encode_to_vec(),
            Rpc::GetWallet => api::GetWalletRequest {
                enterprise_number: t(6),
                as_of: self.as_of(),
            }
            .encode_to_vec(),
            Rpc::GetStatement => api::GetStatementRequest {
                provider_id: t(1),
                as_of: self.as_of(),
            }
            .encode_to_vec(),
            Rpc::GetBudget => api::GetBudgetRequest {
                year: self.number(0),
                as_of: self.as_of(),
            }
            .encode_to_vec(),
            Rpc::GetYearSummary => api::GetYearSummaryRequest {
                year: self.number(0),
                as_of: self.as_of(),
            }
            .encode_to_vec(),
            Rpc::GetCompanies => api::GetCompaniesRequest {
                year: self.number(0),
                as_of: self.as_of(),
            }
            .encode_to_vec(),
            Rpc::GetTrainingHours => api::GetTrainingHoursRequest {
                year: self.number(0),
                as_of: self.as_of(),
            }
            .encode_to_vec(),
            Rpc::GetTrialBalance => api::GetTrialBalanceRequest {
                as_of: self.as_of(),
            }
            .encode_to_vec(),
            Rpc::ReadEvents => api::ReadEventsRequest {
                from_position: u64::from(self.count(2)),
                limit: self.count(0),
            }
            .encode_to_vec(),
            Rpc::Subscribe => api::SubscribeRequest {
                from_position: u64::from(self.count(2)),
                filter: self.flag.then(|| api::SubscribeFilter {
                    stream_prefixes: self.texts[..self.texts.len() / 2].to_vec(),
                    event_types: self.texts[self.texts.len() / 2..].to_vec(),
                }),
            }
            .encode_to_vec(),
            Rpc::GetHead => api::GetHeadRequest {}.encode_to_vec(),
            Rpc::Backup => api::BackupRequest { target_dir: t(4) }.encode_to_vec(),
        }
    }
}

/// The small ledger every case runs against.
struct Ledger {
    state: LedgerState,
    projections: Projections,
    policy: PolicyTable,
    key: PseudonymKey,
}

/// How one request ended.
#[derive(Debug)]
enum Outcome {
    /// `prost` refused the bytes: tonic answers such a request with a status of its own.
    Undecodable,
    /// The request was valid: its events (none for a read) were applied to a copy.
    Answered,
    /// Refused, with the status the client gets.
    Refused(Status),
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

impl Ledger {
    fn new() -> Ledger {
        let policy_text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/policy.toml"
        ))
        .expect("config/policy.toml is readable");
        let mut ledger = Ledger {
            state: LedgerState::default(),
            projections: Projections::default(),
            policy: PolicyTable::from_toml_str(&policy_text).expect("the policy table parses"),
            key: PseudonymKey::new(vec![42; 32]).expect("a 32-byte key"),
        };
        let redemption = api::RedeemHoursRequest {
            request_id: REDEMPTION.to_owned(),
            ..api::RedeemHoursRequest::decode(valid_request(Rpc::RedeemHours).as_slice())
                .expect("the valid redemption decodes")
        };
        let other_provider = api::ApproveProviderRequest {
            provider_id: OTHER_PROVIDER.to_owned(),
            approved_until: String::new(),
            ..api::ApproveProviderRequest::decode(valid_request(Rpc::ApproveProvider).as_slice())
                .expect("the valid approval decodes")
        };
        let module = api::ApproveModuleRequest {
            module_id: MODULE.to_owned(),
            hours_max: 40,
            accepted_voucher_types: vec![VoucherType::General as i32],
            themes: vec![Theme::Ai as i32],
            ..api::ApproveModuleRequest::decode(valid_request(Rpc::ApproveModule).as_slice())
                .expect("the valid module decodes")
        };
        let provider = api::ApproveProviderRequest {
            provider_id: PROVIDER.to_owned(),
            approved_until: String::new(),
            ..other_provider.clone()
        };
        let budget = api::OpenBudgetRequest {
            year: 2025,
            ..decode(&valid_request(Rpc::OpenBudget)).expect("the valid budget decodes")
        };
        let company = api::RegisterCompanyRequest {
            enterprise_number: COMPANY.to_owned(),
            ..decode(&valid_request(Rpc::RegisterCompany)).expect("the valid company decodes")
        };
        // The request id names the batch: another one than the seed's.
        let issuance = api::IssueVouchersRequest {
            request_id: "2ca47b68-88ee-4e57-aec5-f69db997c58a".to_owned(),
            ..decode(&valid_request(Rpc::IssueVouchers)).expect("the valid issuance decodes")
        };
        let steps = [
            (Rpc::OpenBudget, budget.encode_to_vec()),
            (Rpc::ApproveProvider, provider.encode_to_vec()),
            (Rpc::ApproveProvider, other_provider.encode_to_vec()),
            (Rpc::ApproveModule, module.encode_to_vec()),
            (Rpc::RegisterCompany, company.encode_to_vec()),
            (Rpc::IssueVouchers, issuance.encode_to_vec()),
            (Rpc::RedeemHours, redemption.encode_to_vec()),
        ];
        for (rpc, bytes) in steps {
            let (state, projections) = ledger
                .decide_and_apply(rpc, rpc.principal(), &bytes)
                .unwrap_or_else(|outcome| panic!("{rpc:?} builds the small ledger: {outcome:?}"));
            ledger.state = state;
            ledger.projections = projections;
        }
        ledger
    }

    /// Parses a write as the service does: the request id, then the fields into a command.
    fn parse_write(&self, rpc: Rpc, bytes: &[u8]) -> Option<Result<Command, Refusal>> {
        let key = &self.key;
        let parsed = match rpc {
            Rpc::OpenBudget => {
                let r: api::OpenBudgetRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::open_budget(&r))
            }
            Rpc::AdjustBudget => {
                let r: api::AdjustBudgetRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::adjust_budget(&r))
            }
            Rpc::ApproveProvider => {
                let r: api::ApproveProviderRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::approve_provider(&r))
            }
            Rpc::WithdrawProvider => {
                let r: api::WithdrawProviderRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::withdraw_provider(&r))
            }
            Rpc::ApproveModule => {
                let r: api::ApproveModuleRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::approve_module(&r))
            }
            Rpc::WithdrawModule => {
                let r: api::WithdrawModuleRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::withdraw_module(&r))
            }
            Rpc::RegisterCompany => {
                let r: api::RegisterCompanyRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::register_company(&r))
            }
            Rpc::IssueVouchers => {
                let r: api::IssueVouchersRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|id| wire::issue_vouchers(&r, id))
            }
            Rpc::ExpireVouchers => {
                let r: api::ExpireVouchersRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::expire_vouchers(&r))
            }
            Rpc::RecordPayout => {
                let r: api::RecordPayoutRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::record_payout(&r))
            }
            Rpc::RedeemHours => {
                let r: api::RedeemHoursRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|id| wire::redeem_hours(&r, id, key))
            }
            Rpc::ReverseRedemption => {
                let r: api::ReverseRedemptionRequest = decode(bytes)?;
                wire::request_id(&r.request_id).and_then(|_| wire::reverse_redemption(&r))
            }
            _ => return None,
        };
        Some(parsed)
    }

    /// A write, decided against the small ledger and applied to copies of its state and
    /// projections, as the writer would: `Err` holds the outcome when it is not accepted.
    fn decide_and_apply(
        &self,
        rpc: Rpc,
        principal: Principal,
        bytes: &[u8],
    ) -> Result<(LedgerState, Projections), Outcome> {
        let Some(parsed) = self.parse_write(rpc, bytes) else {
            return Err(Outcome::Undecodable);
        };
        let context = Context {
            today: NaiveDate::from_ymd_opt(2025, 12, 31).expect("a valid date"),
            policy: &self.policy,
        };
        let events = parsed
            .and_then(|command| {
                ledger_domain::authorize(&principal, &command)?;
                ledger_domain::decide(&self.state, &command, &context)
            })
            .map_err(|refusal| Outcome::Refused(refusal_status(&refusal)))?;
        let mut state = self.state.clone();
        let mut projections = self.projections.clone();
        for event in &events {
            // What the writer does with a decided event; a failure here is a bug (the engine
            // would stop), never a refusal.
            let stored = ledger_codec::encode_event(event);
            let decoded = ledger_codec::decode_event(&stored)
                .unwrap_or_else(|error| panic!("{rpc:?}: a decided event decodes: {error:?}"));
            assert_eq!(&decoded, event, "{rpc:?}: the stored encoding round-trips");
            if let Event::RedemptionReversed(reversal) = event {
                // The writer reads the redemption's event back from the log; this small
                // ledger's state keeps every redemption, which holds the same facts.
                let redemption = &self.state.redemptions[&reversal.redemption_id];
                projections.load_redemption(&HoursRedeemed {
                    redemption_id: reversal.redemption_id,
                    provider_id: redemption.provider_id.clone(),
                    module_id: redemption.module_id.clone(),
                    enterprise_number: redemption.enterprise_number.clone(),
                    worker: redemption.worker,
                    trainee_status: redemption.trainee_status,
                    voucher_type: redemption.voucher_type,
                    hours: redemption.hours,
                    training_date: redemption.training_date,
                    usage_code: None,
                    draws: redemption.draws.clone(),
                    amount_owed_eur: redemption.amount_eur,
                    postings: Vec::new(),
                });
            }
            state
                .apply(event)
                .unwrap_or_else(|error| panic!("{rpc:?}: a decided event applies: {error:?}"));
            projections
                .apply(projections.position + 1, event)
                .unwrap_or_else(|error| panic!("{rpc:?}: the projections follow: {error:?}"));
        }
        Ok((state, projections))
    }

    /// Reads, as the services parse and answer them from the projections.
    fn read(&self, rpc: Rpc, bytes: &[u8]) -> Outcome {
        let refused = |refusal: Refusal| Outcome::Refused(refusal_status(&refusal));
        let projections = &self.projections;
        let answered = |result: Result<(), Refusal>| match result {
            Ok(()) => Outcome::Answered,
            Err(refusal) => refused(refusal),
        };
        macro_rules! decoded {
            ($type:ty) => {
                match decode::<$type>(bytes) {
                    Some(request) => request,
                    None => return Outcome::Undecodable,
                }
            };
        }
        match rpc {
            Rpc::GetWallet => {
                let r = decoded!(api::GetWalletRequest);
                answered(
                    wire::enterprise_number(&r.enterprise_number).and_then(|number| {
                        wire::as_of(r.as_of.as_ref())?;
                        wire::wallet(projections, &number).map(drop)
                    }),
                )
            }
            Rpc::GetStatement => {
                let r = decoded!(api::GetStatementRequest);
                answered(wire::provider_id(&r.provider_id).and_then(|provider_id| {
                    wire::as_of(r.as_of.as_ref())?;
                    wire::statement(projections, &provider_id).map(drop)
                }))
            }
            Rpc::GetBudget => {
                let r = decoded!(api::GetBudgetRequest);
                answered(wire::report_year(r.year).and_then(|year| {
                    wire::as_of(r.as_of.as_ref())?;
                    wire::budget(projections, year).map(drop)
                }))
            }
            Rpc::GetYearSummary => {
                let r = decoded!(api::GetYearSummaryRequest);
                answered(wire::report_year(r.year).and_then(|year| {
                    wire::as_of(r.as_of.as_ref())?;
                    wire::year_summary(projections, year).map(drop)
                }))
            }
            Rpc::GetCompanies => {
                let r = decoded!(api::GetCompaniesRequest);
                answered(wire::report_year(r.year).and_then(|year| {
                    wire::as_of(r.as_of.as_ref())?;
                    wire::companies(projections, year);
                    Ok(())
                }))
            }
            Rpc::GetTrainingHours => {
                let r = decoded!(api::GetTrainingHoursRequest);
                answered(wire::report_year(r.year).and_then(|year| {
                    wire::as_of(r.as_of.as_ref())?;
                    wire::training_hours(projections, year);
                    Ok(())
                }))
            }
            Rpc::GetTrialBalance => {
                let r = decoded!(api::GetTrialBalanceRequest);
                answered(wire::as_of(r.as_of.as_ref()).map(|_| {
                    wire::trial_balance(projections);
                }))
            }
            Rpc::Subscribe => {
                let r = decoded!(api::SubscribeRequest);
                match EventFilter::parse(r.filter.as_ref()) {
                    Ok(_) => Outcome::Answered,
                    Err(status) => Outcome::Refused(status),
                }
            }
            Rpc::ReadEvents => {
                decoded!(api::ReadEventsRequest);
                Outcome::Answered
            }
            Rpc::GetHead => {
                decoded!(api::GetHeadRequest);
                Outcome::Answered
            }
            Rpc::Backup => {
                decoded!(api::BackupRequest);
                Outcome::Answered
            }
            _ => Outcome::Undecodable,
        }
    }

    /// Runs one request of `rpc` as `principal` and checks what a client would get back.
    fn check(&self, rpc: Rpc, principal: Principal, bytes: &[u8]) -> Outcome {
        let outcome = match rpc {
            Rpc::OpenBudget
            | Rpc::AdjustBudget
            | Rpc::ApproveProvider
            | Rpc::WithdrawProvider
            | Rpc::ApproveModule
            | Rpc::WithdrawModule
            | Rpc::RegisterCompany
            | Rpc::IssueVouchers
            | Rpc::ExpireVouchers
            | Rpc::RecordPayout
            | Rpc::RedeemHours
            | Rpc::ReverseRedemption => match self.decide_and_apply(rpc, principal, bytes) {
                Ok(_) => Outcome::Answered,
                Err(outcome) => outcome,
            },
            _ => self.read(rpc, bytes),
        };
        if let Outcome::Refused(status) = &outcome {
            check_status(rpc, bytes, status);
        }
        outcome
    }
}

/// A refusal's status: an error code, the API's `ErrorInfo` with a reason, a message, and no
/// national register number from the request anywhere in it.
fn check_status(rpc: Rpc, bytes: &[u8], status: &Status) {
    assert_ne!(status.code(), Code::Ok, "{rpc:?}: a refusal is an error");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("{rpc:?}: every refusal carries an ErrorInfo: {status:?}"));
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert!(!info.reason.is_empty(), "{rpc:?}: a reason");
    assert!(!status.message().is_empty(), "{rpc:?}: a message");
    if rpc != Rpc::RedeemHours {
        return;
    }
    let Some(request) = decode::<api::RedeemHoursRequest>(bytes) else {
        return;
    };
    let digits: String = request
        .national_number
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    // Anything with as many digits as a NISS is treated as one.
    if digits.len() < 11 {
        return;
    }
    let everything = [status.message().as_bytes(), status.details()].concat();
    for needle in [request.national_number.as_bytes(), digits.as_bytes()] {
        assert!(
            !everything
                .windows(needle.len())
                .any(|window| window == needle),
            "a refusal of a redemption shows the national number: {status:?}"
        );
    }
}

fn ledger() -> &'static Ledger {
    static LEDGER: std::sync::OnceLock<Ledger> = std::sync::OnceLock::new();
    LEDGER.get_or_init(Ledger::new)
}

/// Strings that reach each parser's edges: valid values, near-valid ones, long ones, any text.
fn field_text() -> impl Strategy<Value = String> {
    let valid = prop::sample::select(vec![
        "8a7d6c5b-4e3f-4a1b-9c8d-2e1f0a9b8c77",
        REDEMPTION,
        "00000000-0000-0000-0000-000000000000",
        "2025-06-01",
        "2025-12-31",
        "2026-01-01",
        "2024-02-29",
        "2025-02-29",
        "15.00",
        "30.00",
        "1500.00",
        "0.001",
        "7657000.00",
        "99999999999999999999.99",
        PROVIDER,
        OTHER_PROVIDER,
        MODULE,
        COMPANY,
        "0403019261",
        NISS,
        "85073003328",
        "01020300170",
        "62.01",
        "62",
        "3",
        "41",
        "12.5",
        "company/",
        "VouchersIssued",
        "",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        4 => valid,
        2 => "[0-9]{0,12}",
        2 => "[0-9 .\\-]{0,20}",
        1 => "[0-9a-fA-F\\-]{30,40}",
        2 => "\\PC{0,40}",
        1 => any::<String>(),
        1 => "[a-z]{190,210}",
        1 => "\\PC{480,520}",
    ]
}

fn field_number() -> impl Strategy<Value = i32> {
    prop_oneof![
        2 => 0..12i32,
        2 => 2000..2110i32,
        1 => any::<i32>(),
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
    ]
}

fn field_count() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => 0..50u32,
        1 => 0..20_000u32,
        1 => any::<u32>(),
    ]
}

/// A request id: mostly a fresh valid one, so that the rest of the request is looked at.
fn request_id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        1 => field_text(),
    ]
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        (request_id_text(), prop::collection::vec(field_text(), 13)).prop_map(
            |(request_id, mut texts)| {
                texts.insert(0, request_id);
                texts
            },
        ),
        prop::collection::vec(field_number(), 3),
        prop::collection::vec(field_count(), 4),
        any::<bool>(),
        prop::collection::vec(field_number(), 0..20),
        0..8usize,
    )
        .prop_map(|(texts, numbers, counts, flag, enums, principal)| Fields {
            texts,
            numbers,
            counts,
            flag,
            enums,
            principal,
        })
}

/// One change to an encoding: replace a byte, flip a bit, insert or delete a byte, cut the rest
/// or add a byte at the end.
#[derive(Clone, Debug)]
struct Mutation {
    at: usize,
    byte: u8,
    kind: u8,
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let at = mutation.at % (bytes.len() + 1);
        match mutation.kind {
            0 if at < bytes.len() => bytes[at] = mutation.byte,
            1 if at < bytes.len() => bytes[at] ^= 1 << (mutation.byte % 8),
            2 => bytes.insert(at, mutation.byte),
            3 if at < bytes.len() => {
                bytes.remove(at);
            }
            4 => bytes.truncate(at),
            _ => bytes.push(mutation.byte),
        }
    }
    bytes
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        (
            any::<usize>(),
            any::<u8>(),
            // In-place changes most often: they keep the framing, and so reach the fields.
            prop_oneof![4 => Just(0u8), 4 => Just(1u8), 1 => 2..6u8],
        )
            .prop_map(|(at, byte, kind)| Mutation { at, byte, kind }),
        1..4,
    )
}

fn rpc() -> impl Strategy<Value = Rpc> {
    prop::sample::select(RPCS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(rpc in rpc(), bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        ledger().check(rpc, rpc.principal(), &bytes);
    }

    #[test]
    fn mutated_valid_requests_never_panic(rpc in rpc(), mutations in mutations()) {
        let bytes = mutate(valid_request(rpc), &mutations);
        ledger().check(rpc, rpc.principal(), &bytes);
    }

    #[test]
    fn random_field_values_never_panic(rpc in rpc(), fields in fields()) {
        let principal = principals()
            .get(fields.principal)
            .cloned()
            .unwrap_or_else(|| rpc.principal());
        ledger().check(rpc, principal, &fields.request(rpc));
    }
}

/// The seeds of the mutations are valid: unchanged, each is answered, so mutations start from
/// requests that reach the rules and the projections.
#[test]
fn every_valid_request_is_answered() {
    for rpc in RPCS {
        let outcome = ledger().check(rpc, rpc.principal(), &valid_request(rpc));
        assert!(matches!(outcome, Outcome::Answered), "{rpc:?}: {outcome:?}");
    }
}

/// Over-long text is refused at the wire, before a command is built, with the domain's reason.
#[test]
fn long_text_is_refused_at_the_edge() {
    let long = "x".repeat(10_000);
    let cases: [(Rpc, Vec<u8>, &str); 4] = [
        (
            Rpc::ApproveProvider,
            api::ApproveProviderRequest {
                name: long.clone(),
                ..decode(&valid_request(Rpc::ApproveProvider)).expect("decodes")
            }
            .encode_to_vec(),
            "TEXT_TOO_LONG",
        ),
        (
            Rpc::IssueVouchers,
            api::IssueVouchersRequest {
                payment_reference: long.clone(),
                ..decode(&valid_request(Rpc::IssueVouchers)).expect("decodes")
            }
            .encode_to_vec(),
            "TEXT_TOO_LONG",
        ),
        (
            Rpc::RegisterCompany,
            api::RegisterCompanyRequest {
                nace_sector: long.clone(),
                ..decode(&valid_request(Rpc::RegisterCompany)).expect("decodes")
            }
            .encode_to_vec(),
            "INVALID_IDENTIFIER",
        ),
        (
            Rpc::ReverseRedemption,
            api::ReverseRedemptionRequest {
                redemption_id: long.clone(),
                ..decode(&valid_request(Rpc::ReverseRedemption)).expect("decodes")
            }
            .encode_to_vec(),
            "INVALID_IDENTIFIER",
        ),
    ];
    for (rpc, bytes, reason) in cases {
        let parsed = ledger()
            .parse_write(rpc, &bytes)
            .expect("the request decodes");
        let refusal = parsed.expect_err("over-long text is refused by the wire layer");
        assert_eq!(refusal.reason(), reason, "{rpc:?}");
    }
}
