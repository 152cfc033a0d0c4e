-- Named statements of the auth domain (SQLite): users and API keys.

-- name: auth_insert_user
INSERT INTO users (id, email, name, roles, is_test, created)
VALUES (:id, :email, :name, :roles, :is_test, :created);

-- name: auth_update_user
UPDATE users SET name = :name, roles = :roles, is_test = :is_test WHERE id = :id;

-- name: auth_get_user
SELECT * FROM users WHERE id = :id;

-- name: auth_find_user
SELECT * FROM users WHERE email = :email;

-- name: auth_list_users
SELECT * FROM users ORDER BY created, id;

-- name: auth_insert_key
INSERT INTO api_keys (id, user_id, prefix, hash, name, created, last_used, revoked_at)
VALUES (:id, :user_id, :prefix, :hash, :name, :created, :last_used, :revoked_at);

-- name: auth_key_by_prefix
SELECT * FROM api_keys WHERE prefix = :prefix;

-- name: auth_list_keys
SELECT * FROM api_keys ORDER BY created, id;

-- name: auth_list_user_keys
SELECT * FROM api_keys WHERE user_id = :user_id ORDER BY created, id;

-- name: auth_revoke_key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, :now) WHERE id = :id RETURNING *;

-- name: auth_touch_key
UPDATE api_keys SET last_used = :now WHERE id = :id;
