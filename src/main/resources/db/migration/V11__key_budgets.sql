-- A key's own limits (api_key, V9) are enforced like a user's: each such key has a budget account of its own, a
-- negative number derived from its id (Budgets.keyAccount), so its windows and holds sit beside its user's in the same
-- tables, apart from every user's.
ALTER TABLE budget_window DROP CONSTRAINT budget_window_user_id_check;
