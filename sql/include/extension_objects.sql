\set ECHO none
-- sql/include/extension_objects.sql: pg_temp.extension_objects(), every
-- object of the installed extension anonymize with its definition, to
-- compare an updated installation with a fresh one.
CREATE FUNCTION pg_temp.extension_objects()
RETURNS TABLE (kind text, name text, definition text)
LANGUAGE sql AS
$$
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'anonymize'),
members AS (
	SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
	   AND d.deptype = 'e'),
rels AS (
	SELECT c.* FROM pg_class c JOIN members m
	    ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
SELECT 'extension', extname::text,
       concat_ws(' ', extversion, extrelocatable, extnamespace::regnamespace)
  FROM ext
UNION ALL
SELECT 'member', pg_describe_object(classid, objid, objsubid), NULL FROM members
UNION ALL
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(E'\n', pg_get_functiondef(p.oid), p.proacl::text,
                 obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p JOIN members m
    ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
UNION ALL
SELECT 'relation', c.oid::regclass::text,
       concat_ws(' ', c.relkind, c.relpersistence, c.relacl::text,
                 obj_description(c.oid, 'pg_class'))
  FROM rels c
UNION ALL
SELECT 'column', a.attrelid::regclass || '.' || a.attname,
       concat_ws(' ', a.attnum, format_type(a.atttypid, a.atttypmod),
                 CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                 'default:' || pg_get_expr(ad.adbin, ad.adrelid),
                 'identity:' || nullif(a.attidentity::text, ''),
                 'generated:' || nullif(a.attgenerated::text, ''),
                 a.attacl::text, col_description(a.attrelid, a.attnum))
  FROM pg_attribute a JOIN rels c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', co.conrelid::regclass || '.' || co.conname,
       pg_get_constraintdef(co.oid)
  FROM pg_constraint co JOIN rels c ON c.oid = co.conrelid
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN rels c ON c.oid = i.indrelid
UNION ALL
SELECT 'trigger', t.tgrelid::regclass || '.' || t.tgname,
       pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'view', c.oid::regclass::text, pg_get_viewdef(c.oid)
  FROM rels c WHERE c.relkind = 'v'
UNION ALL
SELECT 'sequence', s.seqrelid::regclass::text,
       concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
                 s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
  FROM pg_sequence s JOIN rels c ON c.oid = s.seqrelid
UNION ALL
SELECT 'dumped', cfg.rel::regclass::text, cfg.cond
  FROM ext, unnest(ext.extconfig, ext.extcondition) AS cfg (rel, cond)
$$;
\set ECHO all
