-- inventory.movements (migrations/20261206100100_inventory.up.sql): id,
-- organization_id, product_id, kind, quantity (signed), on_hand_after, reservation_id,
-- reason, created_by, created_at. The ledger: written only by the stock functions,
-- and sum(quantity) per product is its on_hand.

--: Movement(reservation_id?, reason?, created_by?)

--- A product's ledger, oldest first, keyset in (created_at, id).
--! movement_list (after_created_at?, after_id?) : Movement
SELECT id, organization_id, product_id, kind, quantity, on_hand_after, reservation_id, reason,
       created_by, created_at
FROM inventory.movements
WHERE organization_id = identity.current_org_id() AND product_id = :product_id
  AND (:after_created_at::timestamptz IS NULL
       OR (created_at, id) > (:after_created_at, :after_id::uuid))
ORDER BY created_at, id
LIMIT :limit;

--- The ledger's balance for a product: what on_hand must be.
--! movement_balance
SELECT coalesce(sum(quantity), 0)::bigint AS balance
FROM inventory.movements
WHERE organization_id = identity.current_org_id() AND product_id = :product_id;
