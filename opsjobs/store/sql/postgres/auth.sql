-- Named statements of the auth domain (PostgreSQL): users and API keys.

-- name: auth_insert_user
INSERT INTO users (id, email, name, roles, is_test, created)
VALUES (%(id)s, %(email)s, %(name)s, %(roles)s::jsonb, %(is_test)s, %(created)s);

-- name: auth_update_user
UPDATE users SET name = %(name)s, roles = %(roles)s::jsonb, is_test = %(is_test)s
 WHERE id = %(id)s;

-- name: auth_get_user
SELECT * FROM users WHERE id = %(id)s;

-- name: auth_find_user
SELECT * FROM users WHERE email = %(email)s;

-- name: auth_list_users
SELECT * FROM users ORDER BY created, id;

-- name: auth_insert_key
INSERT INTO api_keys (id, user_id, prefix, hash, name, created, last_used, revoked_at)
VALUES (%(id)s, %(user_id)s, %(prefix)s, %(hash)s, %(name)s, %(created)s, %(last_used)s,
        %(revoked_at)s);

-- name: auth_key_by_prefix
SELECT * FROM api_keys WHERE prefix = %(prefix)s;

-- name: auth_list_keys
SELECT * FROM api_keys ORDER BY created, id;

-- name: auth_list_user_keys
SELECT * FROM api_keys WHERE user_id = %(user_id)s ORDER BY created, id;

-- name: auth_revoke_key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, %(now)s) WHERE id = %(id)s RETURNING *;

-- name: auth_touch_key
UPDATE api_keys SET last_used = %(now)s WHERE id = %(id)s;
