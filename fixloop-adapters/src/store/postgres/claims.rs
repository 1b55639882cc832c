//! Action claims in PostgreSQL (see `store::claims`): inserted only while the claimant's lease is the service's
//! live lease, checked by the database in the insert itself (the lease row locked for share, as a fenced append
//! does), and at most once per (service, proposal, version) (the primary key).

use super::super::outbox::format_time;
use super::super::{ActionClaim, Claimed, Lease, StoreError};
use super::{PostgresStore, seq_in, seq_out};

/// The claim, made only under the live lease (holder, epoch, unexpired); a second claim of the action inserts
/// nothing.
const CLAIM: &str =
    "INSERT INTO action_claims (service, proposal, version, action_id, holder, epoch, claimed_at)
     SELECT l.service, $2::text, $3::bigint, $4::text, l.holder, l.epoch, $7::text
     FROM leases l
     WHERE l.service = $1::text AND l.holder = $5::text AND l.epoch = $6::bigint
       AND l.expires_at > clock_timestamp()
     FOR SHARE OF l
     ON CONFLICT (service, proposal, version) DO NOTHING";

/// Whether a lease is still the service's live lease.
const HELD: &str =
    "SELECT EXISTS (SELECT 1 FROM leases WHERE service = $1 AND holder = $2 AND epoch = $3
     AND expires_at > clock_timestamp())";

/// Who claimed an action.
const CLAIMANT: &str =
    "SELECT holder, epoch FROM action_claims WHERE service = $1 AND proposal = $2 AND version = $3";

impl PostgresStore {
    /// See [`Store::claim_action`](super::super::Store::claim_action).
    pub(super) async fn claim_under(
        &self,
        lease: &Lease,
        claim: &ActionClaim,
    ) -> Result<Claimed, StoreError> {
        let service = lease.service.as_str();
        let epoch = seq_in(lease.epoch);
        let version = seq_in(claim.version);
        self.bounded("an action claim", async {
            let client = self.client().await?;
            let inserted = client
                .execute(
                    CLAIM,
                    &[
                        &service,
                        &claim.proposal,
                        &version,
                        &claim.action_id,
                        &lease.holder,
                        &epoch,
                        &format_time(claim.at),
                    ],
                )
                .await
                .map_err(self.fail())?;
            if inserted == 1 {
                return Ok(Claimed::Claimed);
            }
            let held: bool = client
                .query_one(HELD, &[&service, &lease.holder, &epoch])
                .await
                .map_err(self.fail())?
                .get(0);
            if !held {
                return Err(StoreError::Fenced {
                    service: service.to_owned(),
                    epoch: lease.epoch,
                });
            }
            let row = client
                .query_one(CLAIMANT, &[&service, &claim.proposal, &version])
                .await
                .map_err(self.fail())?;
            Ok(Claimed::Taken {
                holder: row.get(0),
                epoch: seq_out(&self.location, row.get(1))?,
            })
        })
        .await
    }
}
