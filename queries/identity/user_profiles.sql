--: UserProfile(bio?, location?, website_url?)

--- Idempotent: creates the profile or replaces its fields.
--! user_profile_upsert (bio?, location?, website_url?) : UserProfile
INSERT INTO identity.user_profiles (user_id, bio, location, website_url, social_links, preferences)
VALUES (:user_id, :bio, :location, :website_url, :social_links, :preferences)
ON CONFLICT (user_id) DO UPDATE
SET bio = EXCLUDED.bio,
    location = EXCLUDED.location,
    website_url = EXCLUDED.website_url,
    social_links = EXCLUDED.social_links,
    preferences = EXCLUDED.preferences
RETURNING id, user_id, bio, location, website_url, social_links, preferences, created_at, updated_at;

--! user_profile_get_by_user : UserProfile
SELECT id, user_id, bio, location, website_url, social_links, preferences, created_at, updated_at
FROM identity.user_profiles
WHERE user_id = :user_id;

--! user_profile_delete
DELETE FROM identity.user_profiles WHERE user_id = :user_id;
