//! The query calls (`QueryService`): what the ledger holds now, listed page by page for an
//! operator's backend. Every list has a stable order (a key of the listed thing), and a page
//! resumes strictly after the last key of the page before, so an entry is never listed twice
//! in one listing and an entry already there when the listing began is never skipped.
//!
//! Page tokens are opaque to clients and checked here: hex of a version, the listing, a digest
//! of the filters, the cursor (the last key listed) and a SHA-256 checksum of all that. They
//! are not secret (a caller who forges one only resumes a list it may read anyway), but one
//! that was not written by this module, belongs to other filters or points past the log is
//! refused with INVALID_ARGUMENT and a reason, never trusted.
//!
//! The lists are read from the writer's state and projections between two groups (`read`):
//! each page is bounded by `PAGE_LEN_MAX` entries, and scans at most the entities of one kind
//! (providers, modules, companies, one company's batches). The redemptions and payouts of a
//! provider are as many as the log's events: the projections keep only their positions, and a
//! page's events are read back from the log on a blocking thread, never by the writer.

use std::ops::Bound;

use chrono::NaiveDate;
use ledger_codec::encode_date;
use ledger_domain::{EnterpriseNumber, Identifier, Refusal, VoucherType};
use ledger_proto::v1 as api;
use ledger_proto::v1::query_service_server::QueryService;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{may_read, Read};
use crate::services::{store_status, Ledger};
use crate::status::{invalid_field_status, refusal_status, ServerReason};
use crate::wire;

/// Most entries in one page. A page of the largest entries (modules with every theme, events of
/// up to 4 KiB) stays within a few megabytes, and a backend listing 13 000 companies needs 13
/// calls.
pub const PAGE_LEN_MAX: usize = 1_000;

/// Entries in a page when the request leaves `page_size` at 0.
pub const PAGE_LEN_DEFAULT: usize = 100;

/// Longest page token accepted, in hex digits: the longest cursor (two dates and a UUID, 57
/// bytes) with the header and checksum is well under it.
const PAGE_TOKEN_HEX_LEN_MAX: usize = 256;

/// First byte of every page token: the version of its layout.
const PAGE_TOKEN_VERSION: u8 = 1;

/// Bytes of the filters' digest and of the checksum in a token.
const DIGEST_BYTES: usize = 8;

/// The lists a token may belong to; its byte in the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listing {
    Providers = 1,
    Modules = 2,
    Companies = 3,
    WalletBatches = 4,
    Redemptions = 5,
    Payouts = 6,
    CompanyRedemptions = 7,
}

fn page_token_invalid(message: &str) -> Status {
    invalid_field_status(
        ServerReason::PageTokenInvalid,
        "page_token",
        message.to_owned(),
    )
}

/// The digest of a listing's filters, written in its tokens: a token is only good for the
/// filters it was written for.
fn filters_digest(listing: Listing, filters: &[&str]) -> [u8; DIGEST_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(b"voucher-ledger/page-filters/v1\0");
    hasher.update([listing as u8]);
    for filter in filters {
        hasher.update(filter.as_bytes());
        hasher.update([0]);
    }
    first_bytes(&hasher.finalize())
}

fn checksum(body: &[u8]) -> [u8; DIGEST_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(b"voucher-ledger/page-token/v1\0");
    hasher.update(body);
    first_bytes(&hasher.finalize())
}

fn first_bytes(digest: &[u8]) -> [u8; DIGEST_BYTES] {
    let mut bytes = [0; DIGEST_BYTES];
    bytes.copy_from_slice(digest.get(..DIGEST_BYTES).unwrap_or(&[0; DIGEST_BYTES]));
    bytes
}

/// Where a listing resumes, with the filters it is for.
struct Page {
    listing: Listing,
    filters: [u8; DIGEST_BYTES],
    len_max: usize,
}

impl Page {
    fn new(listing: Listing, filters: &[&str], page_size: u32) -> Page {
        let len_max = match usize::try_from(page_size) {
            Ok(0) => PAGE_LEN_DEFAULT,
            Ok(size) => size.min(PAGE_LEN_MAX),
            Err(_) => PAGE_LEN_MAX,
        };
        Page {
            listing,
            filters: filters_digest(listing, filters),
            len_max,
        }
    }

    fn token(&self, cursor: &str) -> String {
        let mut body = vec![PAGE_TOKEN_VERSION, self.listing as u8];
        body.extend_from_slice(&self.filters);
        body.extend_from_slice(cursor.as_bytes());
        let sum = checksum(&body);
        body.extend_from_slice(&sum);
        hex::encode(body)
    }

    /// The log position a page of events resumes after: 0 for the first page. The lists of
    /// events (a provider's, a company's) all page by position.
    fn position_after(&self, token: &str) -> Result<u64, Status> {
        Ok(self
            .cursor(token)?
            .map(|cursor| cursor.parse::<u64>().map_err(bad_cursor))
            .transpose()?
            .unwrap_or(0))
    }

    /// The cursor of `token`, or `None` for the first page.
    fn cursor(&self, token: &str) -> Result<Option<String>, Status> {
        if token.is_empty() {
            return Ok(None);
        }
        if token.len() > PAGE_TOKEN_HEX_LEN_MAX {
            return Err(page_token_invalid(
                "page token is longer than any the ledger writes",
            ));
        }
        let bytes = hex::decode(token)
            .map_err(|_| page_token_invalid("page token is not one the ledger wrote"))?;
        let header = 2 + DIGEST_BYTES;
        let Some(split) = bytes
            .len()
            .checked_sub(DIGEST_BYTES)
            .filter(|s| *s >= header)
        else {
            return Err(page_token_invalid("page token is too short"));
        };
        let (body, sum) = bytes.split_at(split);
        if checksum(body) != sum {
            return Err(page_token_invalid("page token is not one the ledger wrote"));
        }
        if body.first() != Some(&PAGE_TOKEN_VERSION) {
            return Err(page_token_invalid("page token is of an unknown version"));
        }
        if body.get(1) != Some(&(self.listing as u8))
            || body.get(2..header) != Some(&self.filters[..])
        {
            return Err(invalid_field_status(
                ServerReason::PageTokenMismatch,
                "page_token",
                "page token belongs to another list or to other filters: pass the same filters as for the first page".to_owned(),
            ));
        }
        let cursor = std::str::from_utf8(body.get(header..).unwrap_or_default())
            .map_err(|_| page_token_invalid("page token is not one the ledger wrote"))?;
        Ok(Some(cursor.to_owned()))
    }

    /// The page of `entries` (already after the cursor, in order): at most `len_max` of them,
    /// and the token of the next page when more follow.
    fn take<T>(
        &self,
        entries: impl Iterator<Item = T>,
        cursor_of: impl Fn(&T) -> String,
    ) -> (Vec<T>, String) {
        let mut page = Vec::with_capacity(self.len_max.min(PAGE_LEN_DEFAULT));
        let mut more = false;
        for entry in entries {
            if page.len() == self.len_max {
                more = true;
                break;
            }
            page.push(entry);
        }
        let next = match page.last() {
            Some(last) if more => self.token(&cursor_of(last)),
            _ => String::new(),
        };
        (page, next)
    }
}

/// Refuses a page of events that resumes after a position past the head the page is read at
/// (a token of another ledger's history, or of this one before a restore).
fn check_not_past_head(after: u64, head_position: u64) -> Result<(), Status> {
    if after > head_position {
        return Err(invalid_field_status(
            ServerReason::PageTokenStale,
            "page_token",
            format!(
                "page token resumes after position {after}, past the log's head {head_position}"
            ),
        ));
    }
    Ok(())
}

fn bad_cursor<T>(_: T) -> Status {
    page_token_invalid("page token does not hold a cursor of this list")
}

fn approval_period(approval: &ledger_domain::state::Approval) -> api::ApprovalPeriod {
    api::ApprovalPeriod {
        approved_from: encode_date(approval.from),
        approved_until: approval.until.map(encode_date).unwrap_or_default(),
        withdrawn_from: approval.withdrawn_from.map(encode_date).unwrap_or_default(),
    }
}

/// The keys after `cursor` of an ordered map.
fn after<K: Ord>(cursor: Option<&K>) -> (Bound<&K>, Bound<&K>) {
    match cursor {
        Some(key) => (Bound::Excluded(key), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

fn optional_date(field: &'static str, text: &str) -> Result<Option<NaiveDate>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    wire::date(field, text)
        .map(Some)
        .map_err(|r| refusal_status(&r))
}

/// The cursor of a wallet batch: its place in the wallet's order (see [`wire::wallet`]).
fn batch_cursor(valid_until: NaiveDate, payment_date: NaiveDate, batch_id: Uuid) -> String {
    format!("{valid_until}|{payment_date}|{batch_id}")
}

fn parse_batch_cursor(cursor: &str) -> Option<(NaiveDate, NaiveDate, Uuid)> {
    let mut parts = cursor.split('|');
    let valid_until = parts.next()?.parse().ok()?;
    let payment_date = parts.next()?.parse().ok()?;
    let batch_id = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((valid_until, payment_date, batch_id))
}

impl Ledger {
    /// A page of a provider's events: positions from the projections between two groups, the
    /// events themselves read back from the log on a blocking thread.
    /// The provider itself, the operator and auditors read its redemptions; its payouts also
    /// the administration, as its statement.
    async fn provider_events<R: ProviderListRequest + Send>(
        &self,
        listing: Listing,
        request: Request<R>,
    ) -> Result<api::ListEventsResponse, Status> {
        let principal = self.authenticate(&request)?;
        let request = request.into_inner();
        let provider_id =
            wire::provider_id(request.provider_id()).map_err(|r| refusal_status(&r))?;
        let read = match listing {
            Listing::Payouts => Read::Statement {
                provider_id: &provider_id,
            },
            _ => Read::Redemptions {
                provider_id: &provider_id,
            },
        };
        may_read(&principal, &read)?;
        let page = Page::new(listing, &[provider_id.as_str()], request.page_size());
        let after = page.position_after(request.page_token())?;
        let len_max = page.len_max;
        let (positions, more, as_of_position) = self
            .read(move |view| {
                check_not_past_head(after, view.projections.position)?;
                if !view.state.providers.contains_key(&provider_id) {
                    return Err(refusal_status(&Refusal::ProviderNotFound));
                }
                let records = view.projections.provider_records.get(&provider_id);
                let positions = records.map_or(&[][..], |records| match listing {
                    Listing::Payouts => &records.payouts[..],
                    _ => &records.redemptions[..],
                });
                let (page, more) =
                    ledger_projections::queries::page_after(positions, after, len_max);
                Ok((page.to_vec(), more, view.projections.position))
            })
            .await??;
        self.events_at(positions, more, as_of_position, &page).await
    }

    /// A company's statement of redemptions (`CompanyService.ListCompanyRedemptions`): its
    /// redemptions and reversals, as stored, in log order, a page at a time.
    pub(crate) async fn company_redemptions(
        &self,
        request: Request<api::ListCompanyRedemptionsRequest>,
    ) -> Result<api::ListEventsResponse, Status> {
        let principal = self.authenticate(&request)?;
        let request = request.into_inner();
        let number =
            wire::enterprise_number(&request.enterprise_number).map_err(|r| refusal_status(&r))?;
        may_read(
            &principal,
            &Read::Company {
                enterprise_number: &number,
            },
        )?;
        let page = Page::new(
            Listing::CompanyRedemptions,
            &[number.as_str()],
            request.page_size,
        );
        let after = page.position_after(&request.page_token)?;
        let len_max = page.len_max;
        let (positions, more, as_of_position) = self
            .read(move |view| {
                check_not_past_head(after, view.projections.position)?;
                if !view.state.companies.contains_key(&number) {
                    return Err(refusal_status(&Refusal::CompanyNotFound));
                }
                let positions = view
                    .projections
                    .company_redemptions
                    .get(&number)
                    .map_or(&[][..], Vec::as_slice);
                let (page, more) =
                    ledger_projections::queries::page_after(positions, after, len_max);
                Ok((page.to_vec(), more, view.projections.position))
            })
            .await??;
        self.events_at(positions, more, as_of_position, &page).await
    }

    /// The events at `positions`, read back from the log on a blocking thread, as a page of a
    /// listing whose next token resumes after the last of them when `more` follow.
    async fn events_at(
        &self,
        positions: Vec<u64>,
        more: bool,
        as_of_position: u64,
        page: &Page,
    ) -> Result<api::ListEventsResponse, Status> {
        let engine = self.inner.engine.clone();
        let events = tokio::task::spawn_blocking(move || {
            positions
                .iter()
                .map(|position| engine.reader().read_at(*position).map(|r| r.event))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|_| crate::services::unavailable())?
        .map_err(|error| store_status(&error))?;
        let next_page_token = match events.last() {
            Some(last) if more => page.token(&last.position.to_string()),
            _ => String::new(),
        };
        Ok(api::ListEventsResponse {
            events,
            next_page_token,
            as_of_position,
        })
    }
}

/// The two lists of a provider's events take the same request.
trait ProviderListRequest {
    fn provider_id(&self) -> &str;
    fn page_size(&self) -> u32;
    fn page_token(&self) -> &str;
}

macro_rules! provider_list_requests {
    ($($request:ty),*) => {
        $(impl ProviderListRequest for $request {
            fn provider_id(&self) -> &str {
                &self.provider_id
            }
            fn page_size(&self) -> u32 {
                self.page_size
            }
            fn page_token(&self) -> &str {
                &self.page_token
            }
        })*
    };
}

provider_list_requests!(api::ListRedemptionsRequest, api::ListPayoutsRequest);

#[tonic::async_trait]
impl QueryService for Ledger {
    async fn list_providers(
        &self,
        request: Request<api::ListProvidersRequest>,
    ) -> Result<Response<api::ListProvidersResponse>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Catalogue)?;
        let request = request.into_inner();
        let page = Page::new(Listing::Providers, &[], request.page_size);
        let cursor = page
            .cursor(&request.page_token)?
            .map(|cursor| Identifier::parse(&cursor).ok_or(()).map_err(bad_cursor))
            .transpose()?;
        self.read(move |view| {
            let entries = view
                .state
                .providers
                .range::<_, Identifier>(after(cursor.as_ref()));
            let (providers, next_page_token) =
                page.take(entries, |(provider_id, _)| provider_id.to_string());
            api::ListProvidersResponse {
                providers: providers
                    .into_iter()
                    .map(|(provider_id, provider)| api::ProviderEntry {
                        provider_id: provider_id.to_string(),
                        name: provider.name.clone(),
                        approvals: provider.approvals.iter().map(approval_period).collect(),
                    })
                    .collect(),
                next_page_token,
                as_of_position: view.projections.position,
            }
        })
        .await
        .map(Response::new)
    }

    async fn list_modules(
        &self,
        request: Request<api::ListModulesRequest>,
    ) -> Result<Response<api::ListModulesResponse>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Catalogue)?;
        let request = request.into_inner();
        let provider_id = if request.provider_id.is_empty() {
            None
        } else {
            Some(wire::provider_id(&request.provider_id).map_err(|r| refusal_status(&r))?)
        };
        let theme = if request.theme == 0 {
            None
        } else {
            Some(
                ledger_codec::theme_from_proto(request.theme)
                    .ok_or_else(|| refusal_status(&Refusal::UnknownEnumValue { field: "theme" }))?,
            )
        };
        let in_force_on = optional_date("in_force_on", &request.in_force_on)?;
        let page = Page::new(
            Listing::Modules,
            &[
                &request.provider_id,
                &request.theme.to_string(),
                &request.in_force_on,
            ],
            request.page_size,
        );
        let cursor = page
            .cursor(&request.page_token)?
            .map(|cursor| Identifier::parse(&cursor).ok_or(()).map_err(bad_cursor))
            .transpose()?;
        self.read(move |view| {
            let entries = view
                .state
                .modules
                .range::<_, Identifier>(after(cursor.as_ref()))
                .filter(|(_, module)| {
                    provider_id
                        .as_ref()
                        .is_none_or(|id| module.provider_id == *id)
                        && theme.is_none_or(|theme| module.themes.contains(&theme))
                        && in_force_on.is_none_or(|date| module.approval.in_force_on(date))
                });
            let (modules, next_page_token) =
                page.take(entries, |(module_id, _)| module_id.to_string());
            api::ListModulesResponse {
                modules: modules
                    .into_iter()
                    .map(|(module_id, module)| api::ModuleEntry {
                        module_id: module_id.to_string(),
                        provider_id: module.provider_id.to_string(),
                        title: module.title.clone(),
                        hours_max: module.hours_max,
                        accepted_voucher_types: module
                            .accepted_voucher_types
                            .iter()
                            .map(|t| ledger_codec::voucher_type_to_proto(*t) as i32)
                            .collect(),
                        themes: module
                            .themes
                            .iter()
                            .map(|t| ledger_codec::theme_to_proto(*t) as i32)
                            .collect(),
                        approval: Some(approval_period(&module.approval)),
                    })
                    .collect(),
                next_page_token,
                as_of_position: view.projections.position,
            }
        })
        .await
        .map(Response::new)
    }

    async fn list_companies(
        &self,
        request: Request<api::ListCompaniesRequest>,
    ) -> Result<Response<api::ListCompaniesResponse>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Wallet)?;
        let request = request.into_inner();
        let year = wire::report_year(request.year).map_err(|r| refusal_status(&r))?;
        let page = Page::new(Listing::Companies, &[&year.to_string()], request.page_size);
        let cursor = page
            .cursor(&request.page_token)?
            .map(|cursor| {
                EnterpriseNumber::parse(&cursor)
                    .ok_or(())
                    .map_err(bad_cursor)
            })
            .transpose()?;
        self.read(move |view| {
            let entries = view
                .state
                .companies
                .range::<_, EnterpriseNumber>(after(cursor.as_ref()))
                .filter_map(|(number, company)| {
                    let registration = company.registrations.get(&year)?;
                    Some((number, company, registration))
                });
            let (companies, next_page_token) =
                page.take(entries, |(number, _, _)| number.to_string());
            api::ListCompaniesResponse {
                companies: companies
                    .into_iter()
                    .map(|(number, company, registration)| {
                        let policy = view.policy.in_force(registration.registered_on);
                        let quotas = VoucherType::ALL
                            .iter()
                            .map(|voucher_type| {
                                let quota = policy.map_or(0, |policy| {
                                    policy.quota(registration.size_class, *voucher_type)
                                });
                                let used = company
                                    .issued
                                    .get(&(year, *voucher_type))
                                    .copied()
                                    .unwrap_or(0);
                                api::QuotaUse {
                                    voucher_type: ledger_codec::voucher_type_to_proto(*voucher_type)
                                        as i32,
                                    quota,
                                    used,
                                    left: quota.saturating_sub(used),
                                }
                            })
                            .collect();
                        api::CompanyEntry {
                            enterprise_number: number.to_string(),
                            year,
                            name: registration.name.clone(),
                            legal_form: ledger_codec::legal_form_to_proto(registration.legal_form)
                                as i32,
                            size_class: registration.size_class.name().to_owned(),
                            nace_sector: registration.nace_sector.clone(),
                            registered_on: encode_date(registration.registered_on),
                            quotas,
                        }
                    })
                    .collect(),
                next_page_token,
                as_of_position: view.projections.position,
            }
        })
        .await
        .map(Response::new)
    }

    async fn list_wallet_batches(
        &self,
        request: Request<api::ListWalletBatchesRequest>,
    ) -> Result<Response<api::ListWalletBatchesResponse>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Wallet)?;
        let request = request.into_inner();
        let number =
            wire::enterprise_number(&request.enterprise_number).map_err(|r| refusal_status(&r))?;
        let expiring_before = optional_date("expiring_before", &request.expiring_before)?;
        let page = Page::new(
            Listing::WalletBatches,
            &[number.as_str(), &request.expiring_before],
            request.page_size,
        );
        let cursor = page
            .cursor(&request.page_token)?
            .map(|cursor| parse_batch_cursor(&cursor).ok_or(()).map_err(bad_cursor))
            .transpose()?;
        self.read(move |view| {
            let projections = view.projections;
            let known = projections.wallets.contains_key(&number)
                || projections.companies.contains_key(&number);
            if !known {
                return Err(refusal_status(&Refusal::CompanyNotFound));
            }
            let mut batches: Vec<_> = projections
                .wallets
                .get(&number)
                .map(|wallet| {
                    wallet
                        .batches
                        .iter()
                        .filter(|(_, batch)| {
                            batch.remaining > 0
                                && expiring_before.is_none_or(|date| batch.valid_until < date)
                        })
                        .map(|(batch_id, batch)| {
                            ((batch.valid_until, batch.payment_date, *batch_id), batch)
                        })
                        .filter(|(key, _)| cursor.is_none_or(|cursor| *key > cursor))
                        .collect()
                })
                .unwrap_or_default();
            batches.sort_by_key(|(key, _)| *key);
            let (batches, next_page_token) = page.take(batches.into_iter(), |(key, _)| {
                batch_cursor(key.0, key.1, key.2)
            });
            Ok(api::ListWalletBatchesResponse {
                batches: batches
                    .into_iter()
                    .map(|((_, _, batch_id), batch)| wire::wallet_batch(&batch_id, batch))
                    .collect(),
                next_page_token,
                as_of_position: projections.position,
            })
        })
        .await?
        .map(Response::new)
    }

    async fn list_redemptions(
        &self,
        request: Request<api::ListRedemptionsRequest>,
    ) -> Result<Response<api::ListEventsResponse>, Status> {
        self.provider_events(Listing::Redemptions, request)
            .await
            .map(Response::new)
    }

    async fn list_payouts(
        &self,
        request: Request<api::ListPayoutsRequest>,
    ) -> Result<Response<api::ListEventsResponse>, Status> {
        self.provider_events(Listing::Payouts, request)
            .await
            .map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_batch_cursor, Listing, Page, PAGE_LEN_DEFAULT, PAGE_LEN_MAX};
    use tonic_types::StatusExt;

    fn reason(status: &tonic::Status) -> String {
        status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_token_gives_back_its_cursor_for_the_same_list_and_filters() {
        let page = Page::new(Listing::Modules, &["AG-0012", "3", ""], 10);
        let token = page.token("M-0042");
        assert_eq!(
            page.cursor(&token).expect("a cursor").as_deref(),
            Some("M-0042")
        );
        assert_eq!(page.cursor("").expect("no cursor"), None);
    }

    #[test]
    fn a_token_of_other_filters_or_another_list_is_a_mismatch() {
        let token = Page::new(Listing::Modules, &["AG-0012"], 10).token("M-0042");
        let other_filters = Page::new(Listing::Modules, &["AG-0013"], 10);
        let other_list = Page::new(Listing::Providers, &["AG-0012"], 10);
        for page in [other_filters, other_list] {
            let status = page.cursor(&token).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert_eq!(reason(&status), "PAGE_TOKEN_MISMATCH");
        }
    }

    #[test]
    fn a_forged_truncated_or_altered_token_is_invalid() {
        let page = Page::new(Listing::Providers, &[], 10);
        let token = page.token("AG-0012");
        let mut altered = token.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).expect("hex");
        let too_long = "ab".repeat(200);
        for forged in [
            "not hex at all",
            "00",
            &token[..token.len() - 2],
            &altered,
            &too_long,
            "0105",
        ] {
            let status = page.cursor(forged).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{forged}");
            assert_eq!(reason(&status), "PAGE_TOKEN_INVALID", "{forged}");
        }
    }

    #[test]
    fn page_size_zero_is_the_default_and_above_the_maximum_is_the_maximum() {
        assert_eq!(
            Page::new(Listing::Providers, &[], 0).len_max,
            PAGE_LEN_DEFAULT
        );
        assert_eq!(Page::new(Listing::Providers, &[], 7).len_max, 7);
        assert_eq!(
            Page::new(Listing::Providers, &[], u32::MAX).len_max,
            PAGE_LEN_MAX
        );
    }

    #[test]
    fn a_page_holds_at_most_its_length_and_a_token_only_when_more_follow() {
        let page = Page::new(Listing::Payouts, &[], 2);
        let (entries, next) = page.take(1..=5, |n| n.to_string());
        assert_eq!(entries, vec![1, 2]);
        assert_eq!(page.cursor(&next).expect("a cursor").as_deref(), Some("2"));
        let (entries, next) = page.take(1..=2, |n| n.to_string());
        assert_eq!(entries, vec![1, 2]);
        assert!(next.is_empty());
    }

    #[test]
    fn a_batch_cursor_reads_back_or_is_refused() {
        let cursor = "2026-10-31|2025-11-04|67e55044-10b1-426f-9247-bb680e5fe0c8";
        assert!(parse_batch_cursor(cursor).is_some());
        assert!(parse_batch_cursor("2026-10-31|2025-11-04").is_none());
        assert!(parse_batch_cursor(&format!("{cursor}|x")).is_none());
    }
}
