-- payments.payment_disputes (migrations/20261206600100_payments.up.sql): id,
-- organization_id, payment_id, amount, reason, status, evidence, evidence_due_at,
-- opened_at, resolved_at, updated_at. For at most the captured amount;
-- needs_response -> under_review -> won or lost.

--: Dispute(resolved_at?)

--! dispute_open : Dispute
INSERT INTO payments.payment_disputes (payment_id, amount, reason, evidence_due_at)
VALUES (:payment_id, :amount, :reason, :evidence_due_at)
RETURNING id, payment_id, amount, reason, status, evidence, evidence_due_at, opened_at, resolved_at,
          updated_at;

--- Submits evidence and moves the dispute on (WY002 for a move not allowed).
--! dispute_update : Dispute
UPDATE payments.payment_disputes SET status = :status, evidence = :evidence
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, payment_id, amount, reason, status, evidence, evidence_due_at, opened_at, resolved_at,
          updated_at;

--! dispute_list : Dispute
SELECT id, payment_id, amount, reason, status, evidence, evidence_due_at, opened_at, resolved_at,
       updated_at
FROM payments.payment_disputes
WHERE organization_id = identity.current_org_id() AND payment_id = :payment_id
ORDER BY opened_at, id;
