-- inventory.reservations (migrations/20261206100100_inventory.up.sql): id,
-- organization_id, product_id, user_id, quantity, slot, status, expires_at,
-- finished_at, created_at, updated_at. Made, released and fulfilled only through the
-- functions; at most 5 active per user and product; they expire 5 minutes after
-- creation.

--: Reservation(finished_at?)

--- Reserves units for the current user; returns the reservation's id. WN002 when fewer
--- are available, WN003 at the user's fifth active reservation of the product, WN001
--- for a product that is not the tenant's. One conditional update of the stock row.
--! reservation_create
SELECT inventory.reserve_inventory(:product_id, :quantity) AS id;

--- Gives the stock back: true when released now, false when it was released or expired
--- already; WN004 for a fulfilled one, WN001 for another user's or none.
--! reservation_release
SELECT inventory.release_reservation(:id) AS released;

--- Sells what it holds (a sale movement); returns on_hand after it. WN004 when it has
--- expired or finished.
--! reservation_fulfill
SELECT inventory.fulfill_reservation(:id) AS on_hand;

--- Expires the tenant's reservations past their time (at most 10,000); returns how
--- many. Idempotent.
--! reservation_cleanup_expired
SELECT inventory.cleanup_expired_reservations() AS expired;

--! reservation_get : Reservation
SELECT id, organization_id, product_id, user_id, quantity, slot, status, expires_at, finished_at,
       created_at, updated_at
FROM inventory.reservations
WHERE organization_id = identity.current_org_id() AND id = :id;

--- A product's active reservations (of every user), by the partial slot index.
--! reservation_list_active : Reservation
SELECT id, organization_id, product_id, user_id, quantity, slot, status, expires_at, finished_at,
       created_at, updated_at
FROM inventory.reservations
WHERE organization_id = identity.current_org_id() AND product_id = :product_id
  AND status = 'active'
ORDER BY expires_at, id;
