--: LicenseAssignment(assigned_by?)

--- Takes a seat for the user: WL001 when every seat is taken, WL002 on a licence that
--- grants none (not trial or active, or outside its period), WL003 for a user who is not
--- an active member.
--! license_assignment_add : LicenseAssignment
INSERT INTO licensing.license_assignments (license_id, user_id)
VALUES (:license_id, :user_id)
RETURNING license_id, user_id, assigned_by, assigned_at;

--- Gives the seat back; false when the user held none.
--! license_assignment_remove
DELETE FROM licensing.license_assignments
WHERE organization_id = identity.current_org_id() AND license_id = :license_id
  AND user_id = :user_id;

--! license_assignment_list : LicenseAssignment
SELECT license_id, user_id, assigned_by, assigned_at
FROM licensing.license_assignments
WHERE organization_id = identity.current_org_id() AND license_id = :license_id
ORDER BY assigned_at, user_id;
