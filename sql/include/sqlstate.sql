-- sql/include/sqlstate.sql: pg_temp.sqlstate(sql) runs a statement and
-- returns 'ok' or "SQLSTATE: message", so a test shows the error code.
CREATE FUNCTION pg_temp.sqlstate(sql text) RETURNS text
LANGUAGE plpgsql AS
$$
DECLARE
	state text;
	message text;
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
	RETURN state || ': ' || message;
END
$$;
