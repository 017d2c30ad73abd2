-- The key a batch was created with: its lines run under that key's own limits and model list, as its requests would
-- (null for batches created before this column: their lines run as their user's).
ALTER TABLE batch ADD COLUMN key_id uuid;
