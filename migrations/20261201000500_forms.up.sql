-- Why: the forms engine (docs/REQUIREMENTS.md, "forms"): versioned form definitions
-- whose JSON Schema is checked when saved, submissions validated against it on every
-- write, and an event per change in the same transaction, per tenant. JSON Schema
-- draft 2020-12 is evaluated in PL/pgSQL, so it runs on managed PostgreSQL without
-- extensions.
--
-- * SQLSTATEs (sqlstates.txt): WF001 invalid form schema (DETAIL {"schema_path"}),
--   WF002 submission data invalid (DETAIL {"errors": [{instance_path, schema_path,
--   keyword, message}, ...]}), WF003 form not active, WF004 definition immutable (not a
--   draft), WF005 status transition not allowed.
-- * The validator: json_schema_valid (yes/no, stops at the first failure) and
--   json_schema_errors (every error). The yes/no evaluator is unrolled into 13
--   functions, one per nesting level (the last calls itself): a PL/pgSQL function
--   calling itself loses its cached expression plans at every level (the typical
--   form: 172 us unrolled, 207 us as one function; docs/BENCHMARKS.md). The loop below
--   makes them; schema/forms.sql shows every body.

CREATE SCHEMA forms;

-- One validation error, in the shape json_schema_errors returns.
CREATE FUNCTION forms.schema_error(p_instance_path text, p_schema_path text, p_keyword text, p_message text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_array(jsonb_build_object(
    'instance_path', p_instance_path, 'schema_path', p_schema_path,
    'keyword', p_keyword, 'message', p_message));

-- A property name as a JSON Pointer token (RFC 6901: "~" -> "~0", "/" -> "~1").
CREATE FUNCTION forms.pointer_token(p_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(replace(p_name, '~', '~0'), '/', '~1');

-- Resolves any "#..." fragment: percent-decoding, then a JSON pointer (~0, ~1).
CREATE FUNCTION forms.schema_resolve_pointer(p_root jsonb, p_ref text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    fragment text;
    tokens text[];
    token text;
    decoded bytea;
    node jsonb := p_root;
    n integer;
BEGIN
    IF p_ref = '#' OR p_ref = '' THEN
        RETURN p_root;
    ELSIF left(p_ref, 2) <> '#/' THEN
        RETURN NULL;
    END IF;
    fragment := substr(p_ref, 3);
    tokens := string_to_array(fragment, '/');
    FOREACH token IN ARRAY tokens LOOP
        IF strpos(token, '%') > 0 THEN
            -- Percent-decode the URI fragment before reading it as a pointer.
            IF token !~ '^([^%]|%[0-9A-Fa-f]{2})*$' THEN
                RETURN NULL;
            END IF;
            decoded := ''::bytea;
            WHILE token <> '' LOOP
                IF left(token, 1) = '%' THEN
                    decoded := decoded || decode(substr(token, 2, 2), 'hex');
                    token := substr(token, 4);
                ELSE
                    decoded := decoded || convert_to(left(token, 1), 'UTF8');
                    token := substr(token, 2);
                END IF;
            END LOOP;
            token := convert_from(decoded, 'UTF8');
        END IF;
        token := replace(replace(token, '~1', '/'), '~0', '~');
        IF jsonb_typeof(node) = 'object' THEN
            node := node -> token;
        ELSIF jsonb_typeof(node) = 'array' AND token ~ '^(0|[1-9][0-9]{0,8})$' THEN
            n := token::integer;
            node := node -> n;
        ELSE
            RETURN NULL;
        END IF;
        IF node IS NULL THEN
            RETURN NULL;
        END IF;
    END LOOP;
    RETURN node;
END;
$$;

-- The value a "#..." URI fragment points at inside p_root, or NULL. A fragment of
-- plain tokens (object keys, canonical array indexes) resolves in one step, inlined
-- into the caller; escaped ones go through the decoder.
CREATE FUNCTION forms.schema_resolve(p_root jsonb, p_ref text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN p_ref ~ '^#(/([^/%~0-9-][^/%~]*|0|[1-9][0-9]{0,8}))+$'
            THEN p_root #> string_to_array(substr(p_ref, 3), '/')
            ELSE forms.schema_resolve_pointer(p_root, p_ref) END;

CREATE FUNCTION forms.schema_eval(
    s jsonb, i jsonb, root jsonb, ipath text, spath text, mode integer, hops integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    all_errors constant boolean := (mode & 1) = 1;
    it text;
    errs jsonb;
    r jsonb;
    sub jsonb;
    props jsonb;
    pprops jsonb;
    addl jsonb;
    k text;
    v jsonb;
    pk text;
    pv jsonb;
    matched boolean;
    n numeric;
    lim numeric;
    len integer;
    cnt integer;
    idx integer;
    lo integer;
    hi integer;
    str text;
BEGIN
    IF jsonb_typeof(s) <> 'object' THEN
        IF s = 'true' THEN
            RETURN NULL;
        ELSIF s = 'false' THEN
            RETURN forms.schema_error(ipath, spath, 'false', 'no value is allowed here');
        END IF;
        RAISE EXCEPTION 'a schema must be an object or a boolean'
            USING ERRCODE = 'WF001', DETAIL = jsonb_build_object('schema_path', spath)::text;
    END IF;
    it := jsonb_typeof(i);

    sub := s -> 'type';
    IF sub IS NOT NULL THEN
        IF NOT (sub ? it
                OR (it = 'number' AND sub ? 'integer' AND (i::numeric) = trunc(i::numeric))) THEN
            errs := forms.schema_error(ipath, spath || '/type', 'type',
                format('%s is not of type %s', it, sub));
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
    END IF;

    IF s ?| '{enum,const}'::text[] THEN
        sub := s -> 'const';
        IF sub IS NOT NULL AND sub <> i THEN
            errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/const', 'const',
                format('the value must be %s', sub));
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
        sub := s -> 'enum';
        IF sub IS NOT NULL
           AND NOT (CASE WHEN it IN ('object', 'array')
                         THEN EXISTS (SELECT FROM jsonb_array_elements(sub) e WHERE e = i)
                         ELSE sub @> jsonb_build_array(i) END) THEN
            errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/enum', 'enum',
                format('the value must be one of %s', sub));
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
    END IF;

    IF it = 'string' THEN
        IF s ?| '{minLength,maxLength,pattern,format}'::text[] THEN
            str := i #>> '{}';
            sub := s -> 'minLength';
            IF sub IS NOT NULL THEN
                len := length(str);
                IF len < sub::numeric THEN
                    errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/minLength', 'minLength',
                        format('the string is %s characters long, shorter than the minimum of %s', len, sub));
                    IF NOT all_errors THEN RETURN errs; END IF;
                END IF;
            END IF;
            sub := s -> 'maxLength';
            IF sub IS NOT NULL THEN
                len := coalesce(len, length(str));
                IF len > sub::numeric THEN
                    errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/maxLength', 'maxLength',
                        format('the string is %s characters long, longer than the maximum of %s', len, sub));
                    IF NOT all_errors THEN RETURN errs; END IF;
                END IF;
            END IF;
            sub := s -> 'pattern';
            IF sub IS NOT NULL AND str !~ (sub #>> '{}') THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/pattern', 'pattern',
                    format('the string does not match the pattern %s', sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            IF (mode & 2) = 2 AND s ? 'format'
               AND NOT forms.format_matches(s ->> 'format', str) THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/format', 'format',
                    format('the string is not a valid %s', s ->> 'format'));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
    ELSIF it = 'number' THEN
        IF s ?| '{minimum,maximum,exclusiveMinimum,exclusiveMaximum,multipleOf}'::text[] THEN
            n := i::numeric;
            sub := s -> 'minimum';
            IF sub IS NOT NULL AND n < sub::numeric THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/minimum', 'minimum',
                    format('%s is less than the minimum of %s', i, sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            sub := s -> 'maximum';
            IF sub IS NOT NULL AND n > sub::numeric THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/maximum', 'maximum',
                    format('%s is greater than the maximum of %s', i, sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            sub := s -> 'exclusiveMinimum';
            IF sub IS NOT NULL AND n <= sub::numeric THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/exclusiveMinimum', 'exclusiveMinimum',
                    format('%s is not greater than %s', i, sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            sub := s -> 'exclusiveMaximum';
            IF sub IS NOT NULL AND n >= sub::numeric THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/exclusiveMaximum', 'exclusiveMaximum',
                    format('%s is not less than %s', i, sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            sub := s -> 'multipleOf';
            IF sub IS NOT NULL AND n % sub::numeric <> 0 THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/multipleOf', 'multipleOf',
                    format('%s is not a multiple of %s', i, sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
    ELSIF it = 'object' THEN
        IF s ?| '{properties,patternProperties,additionalProperties}'::text[] THEN
            props := s -> 'properties';
            pprops := s -> 'patternProperties';
            addl := s -> 'additionalProperties';
            FOR k, v IN SELECT e.key, e.value FROM jsonb_each(i) e LOOP
                matched := false;
                IF props IS NOT NULL THEN
                    sub := props -> k;
                    IF sub IS NOT NULL THEN
                        matched := true;
                        IF sub <> 'true' THEN
                            r := forms.schema_eval(sub, v, root, ipath || '/' || forms.pointer_token(k),
                                spath || '/properties/' || forms.pointer_token(k), mode, 0);
                            IF r IS NOT NULL THEN
                                errs := coalesce(errs, '[]') || r;
                                IF NOT all_errors THEN RETURN errs; END IF;
                            END IF;
                        END IF;
                    END IF;
                END IF;
                IF pprops IS NOT NULL THEN
                    FOR pk, pv IN SELECT e.key, e.value FROM jsonb_each(pprops) e LOOP
                        IF k ~ pk THEN
                            matched := true;
                            r := forms.schema_eval(pv, v, root, ipath || '/' || forms.pointer_token(k),
                                spath || '/patternProperties/' || forms.pointer_token(pk), mode, 0);
                            IF r IS NOT NULL THEN
                                errs := coalesce(errs, '[]') || r;
                                IF NOT all_errors THEN RETURN errs; END IF;
                            END IF;
                        END IF;
                    END LOOP;
                END IF;
                IF NOT matched AND addl IS NOT NULL THEN
                    IF addl = 'false' THEN
                        r := forms.schema_error(ipath || '/' || forms.pointer_token(k), spath || '/additionalProperties',
                            'additionalProperties', format('the property %s is not allowed', to_jsonb(k)));
                    ELSE
                        r := forms.schema_eval(addl, v, root, ipath || '/' || forms.pointer_token(k),
                            spath || '/additionalProperties', mode, 0);
                    END IF;
                    IF r IS NOT NULL THEN
                        errs := coalesce(errs, '[]') || r;
                        IF NOT all_errors THEN RETURN errs; END IF;
                    END IF;
                END IF;
            END LOOP;
        END IF;
        sub := s -> 'required';
        IF sub IS NOT NULL AND NOT i ?& ARRAY(SELECT jsonb_array_elements_text(sub)) THEN
            FOR k IN SELECT e FROM jsonb_array_elements_text(sub) e WHERE NOT i ? e LOOP
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/required', 'required',
                    format('the required property %s is missing', to_jsonb(k)));
                IF NOT all_errors THEN RETURN errs; END IF;
            END LOOP;
        END IF;
        IF s ?| '{propertyNames,minProperties,maxProperties,dependentRequired,dependentSchemas}'::text[] THEN
            sub := s -> 'propertyNames';
            IF sub IS NOT NULL THEN
                FOR k IN SELECT jsonb_object_keys(i) LOOP
                    r := forms.schema_eval(sub, to_jsonb(k), root, ipath,
                        spath || '/propertyNames', mode, 0);
                    IF r IS NOT NULL THEN
                        errs := coalesce(errs, '[]') || r;
                        IF NOT all_errors THEN RETURN errs; END IF;
                    END IF;
                END LOOP;
            END IF;
            IF s ?| '{minProperties,maxProperties}'::text[] THEN
                SELECT count(*) INTO cnt FROM jsonb_object_keys(i);
                sub := s -> 'minProperties';
                IF sub IS NOT NULL AND cnt < sub::numeric THEN
                    errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/minProperties', 'minProperties',
                        format('the object has %s properties, fewer than the minimum of %s', cnt, sub));
                    IF NOT all_errors THEN RETURN errs; END IF;
                END IF;
                sub := s -> 'maxProperties';
                IF sub IS NOT NULL AND cnt > sub::numeric THEN
                    errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/maxProperties', 'maxProperties',
                        format('the object has %s properties, more than the maximum of %s', cnt, sub));
                    IF NOT all_errors THEN RETURN errs; END IF;
                END IF;
            END IF;
            sub := s -> 'dependentRequired';
            IF sub IS NOT NULL THEN
                FOR k, v IN SELECT e.key, e.value FROM jsonb_each(sub) e WHERE i ? e.key LOOP
                    FOR pk IN SELECT d FROM jsonb_array_elements_text(v) d WHERE NOT i ? d LOOP
                        errs := coalesce(errs, '[]') || forms.schema_error(ipath,
                            spath || '/dependentRequired/' || forms.pointer_token(k), 'dependentRequired',
                            format('the property %s is required when %s is present', to_jsonb(pk), to_jsonb(k)));
                        IF NOT all_errors THEN RETURN errs; END IF;
                    END LOOP;
                END LOOP;
            END IF;
            sub := s -> 'dependentSchemas';
            IF sub IS NOT NULL THEN
                FOR k, v IN SELECT e.key, e.value FROM jsonb_each(sub) e WHERE i ? e.key LOOP
                    r := forms.schema_eval(v, i, root, ipath,
                        spath || '/dependentSchemas/' || forms.pointer_token(k), mode, hops);
                    IF r IS NOT NULL THEN
                        errs := coalesce(errs, '[]') || r;
                        IF NOT all_errors THEN RETURN errs; END IF;
                    END IF;
                END LOOP;
            END IF;
        END IF;
    ELSIF it = 'array' THEN
        IF s ?| '{prefixItems,items,contains,minItems,maxItems,uniqueItems}'::text[] THEN
            len := jsonb_array_length(i);
            sub := s -> 'minItems';
            IF sub IS NOT NULL AND len < sub::numeric THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/minItems', 'minItems',
                    format('the array has %s items, fewer than the minimum of %s', len, sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            sub := s -> 'maxItems';
            IF sub IS NOT NULL AND len > sub::numeric THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/maxItems', 'maxItems',
                    format('the array has %s items, more than the maximum of %s', len, sub));
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            IF s -> 'uniqueItems' = 'true' AND len > 1
               AND (SELECT count(DISTINCT e) FROM jsonb_array_elements(i) e) < len THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/uniqueItems', 'uniqueItems',
                    'the array has duplicate items');
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
            lo := 0;
            sub := s -> 'prefixItems';
            IF sub IS NOT NULL THEN
                lo := least(jsonb_array_length(sub), len);
                FOR idx IN 0 .. lo - 1 LOOP
                    r := forms.schema_eval(sub -> idx, i -> idx, root, ipath || '/' || idx,
                        spath || '/prefixItems/' || idx, mode, 0);
                    IF r IS NOT NULL THEN
                        errs := coalesce(errs, '[]') || r;
                        IF NOT all_errors THEN RETURN errs; END IF;
                    END IF;
                END LOOP;
            END IF;
            sub := s -> 'items';
            IF sub IS NOT NULL AND sub <> 'true' THEN
                FOR idx IN lo .. len - 1 LOOP
                    r := forms.schema_eval(sub, i -> idx, root, ipath || '/' || idx,
                        spath || '/items', mode, 0);
                    IF r IS NOT NULL THEN
                        errs := coalesce(errs, '[]') || r;
                        IF NOT all_errors THEN RETURN errs; END IF;
                    END IF;
                END LOOP;
            END IF;
            sub := s -> 'contains';
            IF sub IS NOT NULL THEN
                lim := coalesce((s -> 'minContains')::numeric, 1);
                n := (s -> 'maxContains')::numeric;
                cnt := 0;
                FOR idx IN 0 .. len - 1 LOOP
                    IF forms.schema_ok_0(sub, i -> idx, root, mode & 2, 0) THEN
                        cnt := cnt + 1;
                        EXIT WHEN n IS NULL AND cnt >= lim;
                        EXIT WHEN cnt > n;
                    END IF;
                END LOOP;
                IF cnt < lim THEN
                    errs := coalesce(errs, '[]') || forms.schema_error(ipath,
                        spath || CASE WHEN s ? 'minContains' THEN '/minContains' ELSE '/contains' END,
                        CASE WHEN s ? 'minContains' THEN 'minContains' ELSE 'contains' END,
                        format('the array has %s items matching "contains", fewer than %s', cnt, lim));
                    IF NOT all_errors THEN RETURN errs; END IF;
                ELSIF cnt > n THEN
                    errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/maxContains', 'maxContains',
                        format('the array has more than %s items matching "contains"', n));
                    IF NOT all_errors THEN RETURN errs; END IF;
                END IF;
            END IF;
        END IF;
    END IF;

    IF s ?| '{$ref,allOf,anyOf,oneOf,not,if,$dynamicRef,$recursiveRef,unevaluatedProperties,unevaluatedItems}'::text[] THEN
        IF s ?| '{$dynamicRef,$recursiveRef,unevaluatedProperties,unevaluatedItems}'::text[] THEN
            RAISE EXCEPTION 'the schema uses a keyword this validator does not support'
                USING ERRCODE = 'feature_not_supported', DETAIL = jsonb_build_object('schema_path', spath)::text,
                      HINT = 'supported: the applicator and validation vocabularies and "$ref" to "#" pointers';
        END IF;
        sub := s -> '$ref';
        IF sub IS NOT NULL THEN
            IF hops >= 32 THEN
                RAISE EXCEPTION 'the $ref at % recurses without reaching a value', spath || '/$ref'
                    USING ERRCODE = 'WF001', DETAIL = jsonb_build_object('schema_path', spath || '/$ref')::text;
            END IF;
            v := forms.schema_resolve(root, sub #>> '{}');
            IF v IS NULL THEN
                RAISE EXCEPTION 'the $ref % does not point into this schema', sub
                    USING ERRCODE = 'WF001', DETAIL = jsonb_build_object('schema_path', spath || '/$ref')::text;
            END IF;
            r := forms.schema_eval(v, i, root, ipath, spath || '/$ref', mode, hops + 1);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
        sub := s -> 'allOf';
        IF sub IS NOT NULL THEN
            FOR idx IN 0 .. jsonb_array_length(sub) - 1 LOOP
                r := forms.schema_eval(sub -> idx, i, root, ipath, spath || '/allOf/' || idx, mode, hops);
                IF r IS NOT NULL THEN
                    errs := coalesce(errs, '[]') || r;
                    IF NOT all_errors THEN RETURN errs; END IF;
                END IF;
            END LOOP;
        END IF;
        sub := s -> 'anyOf';
        IF sub IS NOT NULL THEN
            matched := false;
            FOR idx IN 0 .. jsonb_array_length(sub) - 1 LOOP
                IF forms.schema_ok_0(sub -> idx, i, root, mode & 2, hops) THEN
                    matched := true;
                    EXIT;
                END IF;
            END LOOP;
            IF NOT matched THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/anyOf', 'anyOf',
                    'the value matches none of the "anyOf" schemas');
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
        sub := s -> 'oneOf';
        IF sub IS NOT NULL THEN
            cnt := 0;
            FOR idx IN 0 .. jsonb_array_length(sub) - 1 LOOP
                IF forms.schema_ok_0(sub -> idx, i, root, mode & 2, hops) THEN
                    cnt := cnt + 1;
                    EXIT WHEN cnt > 1;
                END IF;
            END LOOP;
            IF cnt <> 1 THEN
                errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/oneOf', 'oneOf',
                    CASE WHEN cnt = 0 THEN 'the value matches none of the "oneOf" schemas'
                         ELSE 'the value matches more than one of the "oneOf" schemas' END);
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
        sub := s -> 'not';
        IF sub IS NOT NULL AND forms.schema_ok_0(sub, i, root, mode & 2, hops) THEN
            errs := coalesce(errs, '[]') || forms.schema_error(ipath, spath || '/not', 'not',
                'the value must not match the "not" schema');
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
        sub := s -> 'if';
        IF sub IS NOT NULL THEN
            IF forms.schema_ok_0(sub, i, root, mode & 2, hops) THEN
                sub := s -> 'then';
                IF sub IS NOT NULL THEN
                    r := forms.schema_eval(sub, i, root, ipath, spath || '/then', mode, hops);
                END IF;
            ELSE
                sub := s -> 'else';
                IF sub IS NOT NULL THEN
                    r := forms.schema_eval(sub, i, root, ipath, spath || '/else', mode, hops);
                END IF;
            END IF;
            IF sub IS NOT NULL AND r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
    END IF;
    RETURN errs;
END;
$$;

-- True when the jsonb array p_array has an element equal to p_value.
CREATE FUNCTION forms.jsonb_array_has(p_array jsonb, p_value jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (SELECT FROM jsonb_array_elements(p_array) e WHERE e = p_value);

-- True when no two elements of the jsonb array are equal (numbers compare by value).
CREATE FUNCTION forms.jsonb_array_unique(p_array jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT count(DISTINCT e) = count(*) FROM jsonb_array_elements(p_array) e);

DO $do$
DECLARE
    body constant text := $body$
DECLARE
    it text;
    sub jsonb;
    props jsonb;
    pprops jsonb;
    addl jsonb;
    k text;
    v jsonb;
    pk text;
    pv jsonb;
    matched boolean;
    keys jsonb;
    n numeric;
    lim numeric;
    len integer;
    cnt integer;
    idx integer;
    lo integer;
BEGIN
    IF jsonb_typeof(s) <> 'object' THEN
        IF jsonb_typeof(s) = 'boolean' THEN
            RETURN s = 'true';
        END IF;
        RAISE EXCEPTION 'a schema must be an object or a boolean' USING ERRCODE = 'WF001';
    END IF;
    it := jsonb_typeof(i);
    IF s ?| '{type,enum,const}'::text[] AND NOT (
           (s -> 'type' IS NULL OR s -> 'type' ? it
            OR (it = 'number' AND s -> 'type' ? 'integer' AND (i::numeric) = trunc(i::numeric)))
           AND (s -> 'const' IS NULL OR s -> 'const' = i)
           AND (s -> 'enum' IS NULL OR CASE WHEN it IN ('object', 'array')
                                            THEN forms.jsonb_array_has(s -> 'enum', i)
                                            ELSE s -> 'enum' @> jsonb_build_array(i) END)) THEN
        RETURN false;
    END IF;
    CASE it
    WHEN 'string' THEN
        IF s ?| '{minLength,maxLength,pattern,format}'::text[] THEN
            len := length(i #>> '{}');
            IF NOT ((s -> 'minLength' IS NULL OR len >= (s -> 'minLength')::numeric)
                    AND (s -> 'maxLength' IS NULL OR len <= (s -> 'maxLength')::numeric)
                    AND (s -> 'pattern' IS NULL OR (i #>> '{}') ~ (s ->> 'pattern'))
                    AND ((mode & 2) = 0 OR s -> 'format' IS NULL
                         OR forms.format_matches(s ->> 'format', i #>> '{}'))) THEN
                RETURN false;
            END IF;
        END IF;
    WHEN 'number' THEN
        IF s ?| '{minimum,maximum,exclusiveMinimum,exclusiveMaximum,multipleOf}'::text[] THEN
            n := i::numeric;
            IF NOT ((s -> 'minimum' IS NULL OR n >= (s -> 'minimum')::numeric)
                    AND (s -> 'maximum' IS NULL OR n <= (s -> 'maximum')::numeric)
                    AND (s -> 'exclusiveMinimum' IS NULL OR n > (s -> 'exclusiveMinimum')::numeric)
                    AND (s -> 'exclusiveMaximum' IS NULL OR n < (s -> 'exclusiveMaximum')::numeric)
                    AND (s -> 'multipleOf' IS NULL OR n % (s -> 'multipleOf')::numeric = 0)) THEN
                RETURN false;
            END IF;
        END IF;
    WHEN 'object' THEN
        IF s ?| '{properties,patternProperties,additionalProperties}'::text[] THEN
            props := s -> 'properties';
            pprops := s -> 'patternProperties';
            addl := s -> 'additionalProperties';
            IF pprops IS NULL AND pg_column_size(i) < 2048 THEN
                -- A small object's keys as one array: cheaper than a query per object.
                keys := jsonb_path_query_array(i, '$.keyvalue().key');
                FOR idx IN 0 .. jsonb_array_length(keys) - 1 LOOP
                    k := keys ->> idx;
                    sub := coalesce(props -> k, addl);
                    CONTINUE WHEN sub IS NULL;
                    v := i -> k;
                    matched := @leaf(sub, v)@;
                    IF NOT coalesce(matched, @next@(sub, v, root, mode, 0)) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            ELSIF pprops IS NULL THEN
                FOR k, v IN SELECT e.key, e.value FROM jsonb_each(i) e LOOP
                    sub := coalesce(props -> k, addl);
                    CONTINUE WHEN sub IS NULL;
                    matched := @leaf(sub, v)@;
                    IF NOT coalesce(matched, @next@(sub, v, root, mode, 0)) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            ELSE
                FOR k, v IN SELECT e.key, e.value FROM jsonb_each(i) e LOOP
                    sub := props -> k;
                    matched := sub IS NOT NULL;
                    IF matched AND NOT @next@(sub, v, root, mode, 0) THEN
                        RETURN false;
                    END IF;
                    FOR pk, pv IN SELECT e.key, e.value FROM jsonb_each(pprops) e LOOP
                        IF k ~ pk THEN
                            IF NOT @next@(pv, v, root, mode, 0) THEN
                                RETURN false;
                            END IF;
                            matched := true;
                        END IF;
                    END LOOP;
                    IF NOT matched AND addl IS NOT NULL AND NOT @next@(addl, v, root, mode, 0) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            END IF;
        END IF;
        IF s ?| '{required,propertyNames,minProperties,maxProperties,dependentRequired,dependentSchemas}'::text[] THEN
            sub := s -> 'required';
            IF sub IS NOT NULL THEN
                FOR idx IN 0 .. jsonb_array_length(sub) - 1 LOOP
                    IF NOT i ? (sub ->> idx) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            END IF;
            sub := s -> 'propertyNames';
            IF sub IS NOT NULL THEN
                FOR k IN SELECT jsonb_object_keys(i) LOOP
                    IF NOT @next@(sub, to_jsonb(k), root, mode, 0) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            END IF;
            IF s ?| '{minProperties,maxProperties}'::text[] THEN
                SELECT count(*) INTO cnt FROM jsonb_object_keys(i);
                IF NOT ((s -> 'minProperties' IS NULL OR cnt >= (s -> 'minProperties')::numeric)
                        AND (s -> 'maxProperties' IS NULL OR cnt <= (s -> 'maxProperties')::numeric)) THEN
                    RETURN false;
                END IF;
            END IF;
            sub := s -> 'dependentRequired';
            IF sub IS NOT NULL THEN
                FOR k, v IN SELECT e.key, e.value FROM jsonb_each(sub) e LOOP
                    IF i ? k AND NOT i ?& ARRAY(SELECT jsonb_array_elements_text(v)) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            END IF;
            sub := s -> 'dependentSchemas';
            IF sub IS NOT NULL THEN
                FOR k, v IN SELECT e.key, e.value FROM jsonb_each(sub) e LOOP
                    IF i ? k AND NOT @next@(v, i, root, mode, hops) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            END IF;
        END IF;
    WHEN 'array' THEN
        IF s ?| '{prefixItems,items,contains,minItems,maxItems,uniqueItems}'::text[] THEN
            len := jsonb_array_length(i);
            IF NOT ((s -> 'minItems' IS NULL OR len >= (s -> 'minItems')::numeric)
                    AND (s -> 'maxItems' IS NULL OR len <= (s -> 'maxItems')::numeric)
                    AND (len < 2 OR s -> 'uniqueItems' IS DISTINCT FROM 'true'
                         OR forms.jsonb_array_unique(i))) THEN
                RETURN false;
            END IF;
            lo := 0;
            sub := s -> 'prefixItems';
            IF sub IS NOT NULL THEN
                lo := least(jsonb_array_length(sub), len);
                FOR idx IN 0 .. lo - 1 LOOP
                    IF NOT @next@(sub -> idx, i -> idx, root, mode, 0) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            END IF;
            sub := s -> 'items';
            IF sub IS NOT NULL AND sub <> 'true' THEN
                -- An item schema that is only a "$ref" is resolved once, not per item.
                cnt := 0;
                WHILE len > lo AND jsonb_typeof(sub) = 'object' AND sub ? '$ref' AND sub - '$ref' = '{}' LOOP
                    cnt := cnt + 1;
                    IF cnt > 32 THEN
                        RAISE EXCEPTION 'the $ref % recurses without reaching a value', sub -> '$ref'
                            USING ERRCODE = 'WF001';
                    END IF;
                    sub := forms.schema_resolve(root, sub ->> '$ref');
                    IF sub IS NULL THEN
                        RAISE EXCEPTION 'a $ref does not point into this schema' USING ERRCODE = 'WF001';
                    END IF;
                END LOOP;
                FOR idx IN lo .. len - 1 LOOP
                    v := i -> idx;
                    matched := @leaf(sub, v)@;
                    IF NOT coalesce(matched, @next@(sub, v, root, mode, 0)) THEN
                        RETURN false;
                    END IF;
                END LOOP;
            END IF;
            sub := s -> 'contains';
            IF sub IS NOT NULL THEN
                lim := coalesce((s -> 'minContains')::numeric, 1);
                n := (s -> 'maxContains')::numeric;
                cnt := 0;
                FOR idx IN 0 .. len - 1 LOOP
                    IF @next@(sub, i -> idx, root, mode, 0) THEN
                        cnt := cnt + 1;
                        EXIT WHEN n IS NULL AND cnt >= lim;
                        IF cnt > n THEN
                            RETURN false;
                        END IF;
                    END IF;
                END LOOP;
                IF cnt < lim THEN
                    RETURN false;
                END IF;
            END IF;
        END IF;
    ELSE
        NULL;
    END CASE;
    IF s ?| '{$ref,allOf,anyOf,oneOf,not,if,$dynamicRef,$recursiveRef,unevaluatedProperties,unevaluatedItems}'::text[] THEN
        IF s ?| '{$dynamicRef,$recursiveRef,unevaluatedProperties,unevaluatedItems}'::text[] THEN
            RAISE EXCEPTION 'the schema uses a keyword this validator does not support'
                USING ERRCODE = 'feature_not_supported';
        END IF;
        sub := s -> '$ref';
        IF sub IS NOT NULL THEN
            IF hops >= 32 THEN
                RAISE EXCEPTION 'the $ref % recurses without reaching a value', sub USING ERRCODE = 'WF001';
            END IF;
            v := forms.schema_resolve(root, sub #>> '{}');
            IF v IS NULL THEN
                RAISE EXCEPTION 'the $ref % does not point into this schema', sub USING ERRCODE = 'WF001';
            END IF;
            IF NOT @next@(v, i, root, mode, hops + 1) THEN
                RETURN false;
            END IF;
        END IF;
        sub := s -> 'allOf';
        IF sub IS NOT NULL THEN
            FOR idx IN 0 .. jsonb_array_length(sub) - 1 LOOP
                v := sub -> idx;
                IF NOT coalesce(@leaf(v, i)@, @next@(v, i, root, mode, hops)) THEN
                    RETURN false;
                END IF;
            END LOOP;
        END IF;
        sub := s -> 'anyOf';
        IF sub IS NOT NULL THEN
            matched := false;
            FOR idx IN 0 .. jsonb_array_length(sub) - 1 LOOP
                v := sub -> idx;
                IF coalesce(@leaf(v, i)@, @next@(v, i, root, mode, hops)) THEN
                    matched := true;
                    EXIT;
                END IF;
            END LOOP;
            IF NOT matched THEN
                RETURN false;
            END IF;
        END IF;
        sub := s -> 'oneOf';
        IF sub IS NOT NULL THEN
            cnt := 0;
            FOR idx IN 0 .. jsonb_array_length(sub) - 1 LOOP
                v := sub -> idx;
                IF coalesce(@leaf(v, i)@, @next@(v, i, root, mode, hops)) THEN
                    cnt := cnt + 1;
                    IF cnt > 1 THEN
                        RETURN false;
                    END IF;
                END IF;
            END LOOP;
            IF cnt = 0 THEN
                RETURN false;
            END IF;
        END IF;
        sub := s -> 'not';
        IF sub IS NOT NULL AND coalesce(@leaf(sub, i)@, @next@(sub, i, root, mode, hops)) THEN
            RETURN false;
        END IF;
        sub := s -> 'if';
        IF sub IS NOT NULL THEN
            IF coalesce(@leaf(sub, i)@, @next@(sub, i, root, mode, hops)) THEN
                sub := s -> 'then';
            ELSE
                sub := s -> 'else';
            END IF;
            IF sub IS NOT NULL AND NOT coalesce(@leaf(sub, i)@, @next@(sub, i, root, mode, hops)) THEN
                RETURN false;
            END IF;
        END IF;
    END IF;
    RETURN true;
END;
$body$;
    levels constant integer := 12;
    -- A scalar against a schema without applicators, in one expression: no call.
    leaf constant text := $leaf$CASE
    WHEN jsonb_typeof(@S@) = 'boolean' THEN @S@ = 'true'
    WHEN jsonb_typeof(@V@) IN ('object', 'array') OR jsonb_typeof(@S@) <> 'object'
         OR @S@ ?| '{$ref,allOf,anyOf,oneOf,not,if,$dynamicRef,$recursiveRef,unevaluatedProperties,unevaluatedItems}'::text[]
        THEN NULL
    ELSE (@S@ -> 'type' IS NULL OR @S@ -> 'type' ? jsonb_typeof(@V@)
          OR (jsonb_typeof(@V@) = 'number' AND @S@ -> 'type' ? 'integer' AND (@V@)::numeric = trunc((@V@)::numeric)))
         AND (@S@ -> 'const' IS NULL OR @S@ -> 'const' = @V@)
         AND (@S@ -> 'enum' IS NULL OR @S@ -> 'enum' @> jsonb_build_array(@V@))
         AND CASE jsonb_typeof(@V@)
             WHEN 'string' THEN
                 (@S@ -> 'minLength' IS NULL OR length(@V@ #>> '{}') >= (@S@ -> 'minLength')::numeric)
                 AND (@S@ -> 'maxLength' IS NULL OR length(@V@ #>> '{}') <= (@S@ -> 'maxLength')::numeric)
                 AND (@S@ -> 'pattern' IS NULL OR (@V@ #>> '{}') ~ (@S@ ->> 'pattern'))
                 AND ((mode & 2) = 0 OR @S@ -> 'format' IS NULL
                      OR forms.format_matches(@S@ ->> 'format', @V@ #>> '{}'))
             WHEN 'number' THEN
                 (@S@ -> 'minimum' IS NULL OR (@V@)::numeric >= (@S@ -> 'minimum')::numeric)
                 AND (@S@ -> 'maximum' IS NULL OR (@V@)::numeric <= (@S@ -> 'maximum')::numeric)
                 AND (@S@ -> 'exclusiveMinimum' IS NULL OR (@V@)::numeric > (@S@ -> 'exclusiveMinimum')::numeric)
                 AND (@S@ -> 'exclusiveMaximum' IS NULL OR (@V@)::numeric < (@S@ -> 'exclusiveMaximum')::numeric)
                 AND (@S@ -> 'multipleOf' IS NULL OR (@V@)::numeric % (@S@ -> 'multipleOf')::numeric = 0)
             ELSE true
             END
    END$leaf$;
BEGIN
    FOR level IN REVERSE levels .. 0 LOOP
        EXECUTE format($f$
            CREATE FUNCTION forms.schema_ok_%s(s jsonb, i jsonb, root jsonb, mode integer, hops integer)
            RETURNS boolean
            LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
            AS %L$f$, level, replace(replace(replace(replace(body,
                '@leaf(sub, v)@', replace(replace(leaf, '@S@', 'sub'), '@V@', 'v')),
                '@leaf(v, i)@', replace(replace(leaf, '@S@', 'v'), '@V@', 'i')),
                '@leaf(sub, i)@', replace(replace(leaf, '@S@', 'sub'), '@V@', 'i')), '@next@', 'forms.schema_ok_' || least(level + 1, levels)));
    END LOOP;
END;
$do$;

CREATE FUNCTION forms.json_schema_valid(schema jsonb, instance jsonb, assert_formats boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    s constant jsonb := schema #> '{}';
BEGIN
    RETURN forms.schema_ok_0(s, instance #> '{}', s, CASE WHEN assert_formats THEN 2 ELSE 0 END, 0);
END;
$$;


-- Validation entry points. "#> '{}'" hands the evaluator plain (decompressed) values:
-- a compressed value read from a table would otherwise be decompressed at every access.
CREATE FUNCTION forms.json_schema_errors(schema jsonb, instance jsonb, assert_formats boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    s constant jsonb := schema #> '{}';
BEGIN
    RETURN coalesce(forms.schema_eval(s, instance #> '{}', s, '', '',
                                      CASE WHEN assert_formats THEN 3 ELSE 1 END, 0), '[]');
END;
$$;

-- RFC 3339 full-time (with its leap second: :60 only at 23:59 UTC), as the parts of
-- a date-time after "T".
CREATE FUNCTION forms.format_time_ok(p_value text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    m text[] := regexp_match(p_value,
        '^([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([zZ]|([+-])([0-9]{2}):([0-9]{2}))$');
    utc_minute integer;
BEGIN
    IF m IS NULL OR m[1]::integer > 23 OR m[2]::integer > 59 OR m[3]::integer > 60
       OR coalesce(m[7]::integer, 0) > 23 OR coalesce(m[8]::integer, 0) > 59 THEN
        RETURN false;
    END IF;
    IF m[3] = '60' THEN
        utc_minute := m[1]::integer * 60 + m[2]::integer
            - CASE m[6] WHEN '+' THEN 1 WHEN '-' THEN -1 ELSE 0 END
              * (coalesce(m[7]::integer, 0) * 60 + coalesce(m[8]::integer, 0));
        RETURN (utc_minute % 1440 + 1440) % 1440 = 23 * 60 + 59;
    END IF;
    RETURN true;
END;
$$;

-- RFC 3339 full-date: four-digit year, month 01-12, a day that month has.
CREATE FUNCTION forms.format_date_ok(p_value text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    m text[] := regexp_match(p_value, '^([0-9]{4})-([0-9]{2})-([0-9]{2})$');
BEGIN
    IF m IS NULL OR m[2]::integer NOT BETWEEN 1 AND 12 OR m[3]::integer < 1 OR m[1]::integer < 1 THEN
        RETURN false;
    END IF;
    RETURN m[3]::integer <= extract(day FROM make_date(m[1]::integer, m[2]::integer, 1)
                                             + interval '1 month - 1 day');
END;
$$;

CREATE FUNCTION forms.format_ipv4_ok(p_value text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN p_value ~ '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$';

-- RFC 4291 text forms: eight groups, "::" for a run of zero groups, an IPv4 tail.
CREATE FUNCTION forms.format_ipv6_ok(p_value text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    h constant text := '[0-9A-Fa-f]{1,4}';
    v4 constant text := '((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
    head text := p_value;
    groups integer := 8;
    parts text[];
BEGIN
    IF p_value ~ ('\.' ) THEN
        -- An IPv4 tail stands for two groups.
        IF p_value !~ ('(^|:)' || v4 || '$') THEN
            RETURN false;
        END IF;
        head := regexp_replace(p_value, v4 || '$', '');
        IF head = '' THEN
            RETURN false;
        END IF;
        head := CASE WHEN head ~ '::$' THEN head ELSE left(head, -1) END;
        groups := 6;
    END IF;
    IF head ~ '::' THEN
        IF head ~ '::.*::' OR head ~ ':::' THEN
            RETURN false;
        END IF;
        parts := array_remove(string_to_array(replace(head, '::', ':!:'), ':'), '!');
        parts := array_remove(parts, '');
        RETURN coalesce(cardinality(parts), 0) < groups
           AND head ~ ('^(' || h || '(:' || h || ')*)?::(' || h || '(:' || h || ')*)?$');
    END IF;
    RETURN head ~ ('^' || h || '(:' || h || '){' || (groups - 1) || '}$');
END;
$$;

-- RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
CREATE FUNCTION forms.format_hostname_ok(p_value text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN octet_length(p_value) <= 253
   AND p_value ~ '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$';

-- RFC 5321 mailbox: a dot-atom or quoted local part, and a host name or an address
-- literal.
CREATE FUNCTION forms.format_email_ok(p_value text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    m text[] := regexp_match(p_value, '^(.+)@([^@]+)$');
    atom constant text := '[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+';
BEGIN
    IF m IS NULL OR octet_length(m[1]) > 64 THEN
        RETURN false;
    END IF;
    IF NOT (m[1] ~ ('^' || atom || '(\.' || atom || ')*$') OR m[1] ~ '^"([^"\\\r\n]|\\.)*"$') THEN
        RETURN false;
    END IF;
    IF m[2] ~ '^\[IPv6:.*\]$' THEN
        RETURN forms.format_ipv6_ok(substr(m[2], 7, length(m[2]) - 7));
    ELSIF m[2] ~ '^\[.*\]$' THEN
        RETURN forms.format_ipv4_ok(substr(m[2], 2, length(m[2]) - 2));
    END IF;
    RETURN forms.format_hostname_ok(m[2]);
END;
$$;

-- Whether a string is a valid p_format; formats other than those asserted pass.
CREATE FUNCTION forms.format_matches(p_format text, p_value text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE p_format
    WHEN 'date' THEN forms.format_date_ok(p_value)
    WHEN 'time' THEN forms.format_time_ok(p_value)
    WHEN 'date-time' THEN p_value ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]'
                          AND forms.format_date_ok(left(p_value, 10))
                          AND forms.format_time_ok(substr(p_value, 12))
    WHEN 'email' THEN forms.format_email_ok(p_value)
    WHEN 'uuid' THEN p_value ~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
    WHEN 'uri' THEN p_value ~ '^[A-Za-z][A-Za-z0-9+.-]*:([A-Za-z0-9._~!$&''()*+,;=:@/?#\[\]-]|%[0-9A-Fa-f]{2})*$'
    WHEN 'ipv4' THEN forms.format_ipv4_ok(p_value)
    WHEN 'ipv6' THEN forms.format_ipv6_ok(p_value)
    ELSE true
END;

-- Refuses a form schema: SQLSTATE WF001, the JSON pointer of the problem in DETAIL.
CREATE FUNCTION forms.schema_refuse(p_path text, p_message text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'invalid form schema at "%": %', p_path, p_message
        USING ERRCODE = 'WF001', DETAIL = jsonb_build_object('schema_path', p_path)::text;
END;
$$;

-- Checks one (sub)schema at p_path of p_root: every keyword known and well formed,
-- every "$ref" resolving to a schema inside the document, every regex valid.
CREATE FUNCTION forms.schema_check_node(s jsonb, p_root jsonb, p_path text, p_depth integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    k text;
    v jsonb;
    p text;
    ek text;
    ev jsonb;
    target jsonb;
BEGIN
    IF jsonb_typeof(s) = 'boolean' THEN
        RETURN;
    ELSIF jsonb_typeof(s) <> 'object' THEN
        PERFORM forms.schema_refuse(p_path, 'a schema is an object or a boolean');
    ELSIF p_depth > 32 THEN
        PERFORM forms.schema_refuse(p_path, 'schemas nest at most 32 deep');
    END IF;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(s) e LOOP
        p := p_path || '/' || forms.pointer_token(k);
        CASE
        WHEN k = 'type' THEN
            IF NOT (CASE jsonb_typeof(v)
                    WHEN 'string' THEN v #>> '{}' IN ('null', 'boolean', 'object', 'array', 'number', 'string', 'integer')
                    WHEN 'array' THEN jsonb_array_length(v) > 0 AND forms.jsonb_array_unique(v)
                         AND NOT EXISTS (SELECT FROM jsonb_array_elements(v) t
                                         WHERE jsonb_typeof(t) <> 'string'
                                            OR t #>> '{}' NOT IN ('null', 'boolean', 'object', 'array',
                                                                  'number', 'string', 'integer'))
                    ELSE false END) THEN
                PERFORM forms.schema_refuse(p, 'a type is one of null, boolean, object, array, number, string, integer, or a non-empty array of them without repeats');
            END IF;
        WHEN k IN ('enum', 'examples') THEN
            IF jsonb_typeof(v) <> 'array' THEN
                PERFORM forms.schema_refuse(p, format('%s is an array', k));
            END IF;
        WHEN k IN ('const', 'default') THEN
            NULL;
        WHEN k IN ('properties', 'patternProperties', '$defs', 'dependentSchemas') THEN
            IF jsonb_typeof(v) <> 'object' THEN
                PERFORM forms.schema_refuse(p, format('%s is an object of schemas', k));
            END IF;
            FOR ek, ev IN SELECT e.key, e.value FROM jsonb_each(v) e LOOP
                IF k = 'patternProperties' THEN
                    PERFORM forms.schema_check_regex(ek, p || '/' || forms.pointer_token(ek));
                END IF;
                PERFORM forms.schema_check_node(ev, p_root, p || '/' || forms.pointer_token(ek), p_depth + 1);
            END LOOP;
        WHEN k IN ('additionalProperties', 'propertyNames', 'items', 'contains', 'not', 'if', 'then', 'else',
                   'contentSchema') THEN
            PERFORM forms.schema_check_node(v, p_root, p, p_depth + 1);
        WHEN k IN ('prefixItems', 'allOf', 'anyOf', 'oneOf') THEN
            IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
                PERFORM forms.schema_refuse(p, format('%s is a non-empty array of schemas', k));
            END IF;
            FOR ev, ek IN SELECT e.value, (e.n - 1)::text FROM jsonb_array_elements(v) WITH ORDINALITY e(value, n) LOOP
                PERFORM forms.schema_check_node(ev, p_root, p || '/' || ek, p_depth + 1);
            END LOOP;
        WHEN k IN ('minProperties', 'maxProperties', 'minItems', 'maxItems', 'minLength', 'maxLength',
                   'minContains', 'maxContains') THEN
            IF jsonb_typeof(v) <> 'number' OR v::numeric < 0 OR v::numeric <> trunc(v::numeric)
               OR v::numeric > 2147483647 THEN
                PERFORM forms.schema_refuse(p, format('%s is a non-negative integer', k));
            END IF;
        WHEN k IN ('minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum') THEN
            IF jsonb_typeof(v) <> 'number' THEN
                PERFORM forms.schema_refuse(p, format('%s is a number', k));
            END IF;
        WHEN k = 'multipleOf' THEN
            IF jsonb_typeof(v) <> 'number' OR v::numeric <= 0 THEN
                PERFORM forms.schema_refuse(p, 'multipleOf is a number greater than 0');
            END IF;
        WHEN k IN ('uniqueItems', 'deprecated', 'readOnly', 'writeOnly') THEN
            IF jsonb_typeof(v) <> 'boolean' THEN
                PERFORM forms.schema_refuse(p, format('%s is a boolean', k));
            END IF;
        WHEN k = 'pattern' THEN
            IF jsonb_typeof(v) <> 'string' THEN
                PERFORM forms.schema_refuse(p, 'pattern is a string');
            END IF;
            PERFORM forms.schema_check_regex(v #>> '{}', p);
        WHEN k = 'required' THEN
            IF NOT forms.is_name_list(v) THEN
                PERFORM forms.schema_refuse(p, 'required is an array of property names without repeats');
            END IF;
        WHEN k = 'dependentRequired' THEN
            IF jsonb_typeof(v) <> 'object' THEN
                PERFORM forms.schema_refuse(p, 'dependentRequired is an object of arrays of property names');
            END IF;
            FOR ek, ev IN SELECT e.key, e.value FROM jsonb_each(v) e LOOP
                IF NOT forms.is_name_list(ev) THEN
                    PERFORM forms.schema_refuse(p || '/' || forms.pointer_token(ek),
                        'an array of property names without repeats');
                END IF;
            END LOOP;
        WHEN k IN ('title', 'description', '$comment', 'format', 'contentEncoding', 'contentMediaType') THEN
            IF jsonb_typeof(v) <> 'string' THEN
                PERFORM forms.schema_refuse(p, format('%s is a string', k));
            END IF;
        WHEN k = '$schema' THEN
            IF v <> '"https://json-schema.org/draft/2020-12/schema"' THEN
                PERFORM forms.schema_refuse(p, 'only draft 2020-12 ("https://json-schema.org/draft/2020-12/schema") is supported');
            END IF;
        WHEN k = '$id' THEN
            IF p_path <> '' OR jsonb_typeof(v) <> 'string' THEN
                PERFORM forms.schema_refuse(p, '$id is a string, on the root schema only');
            END IF;
        WHEN k = '$ref' THEN
            IF jsonb_typeof(v) <> 'string' THEN
                PERFORM forms.schema_refuse(p, '$ref is a string');
            END IF;
            target := forms.schema_resolve(p_root, v #>> '{}');
            IF target IS NULL THEN
                PERFORM forms.schema_refuse(p, format('$ref %s does not point into this schema (supported: "#" and "#/..." pointers)', v));
            ELSIF jsonb_typeof(target) NOT IN ('object', 'boolean') THEN
                PERFORM forms.schema_refuse(p, format('$ref %s points at a value that is not a schema', v));
            END IF;
        WHEN k LIKE 'x-%' THEN
            NULL;
        ELSE
            PERFORM forms.schema_refuse(p, format('unsupported keyword %s', to_jsonb(k)));
        END CASE;
    END LOOP;
END;
$$;

-- Refuses a pattern PostgreSQL cannot compile.
CREATE FUNCTION forms.schema_check_regex(p_pattern text, p_path text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    PERFORM '' ~ p_pattern;
EXCEPTION WHEN invalid_regular_expression THEN
    PERFORM forms.schema_refuse(p_path, format('invalid regular expression %s', to_jsonb(p_pattern)));
END;
$$;

-- True for an array of distinct strings.
CREATE FUNCTION forms.is_name_list(p_value jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_typeof(p_value) = 'array'
   AND NOT jsonb_path_exists(p_value, 'strict $[*] ? (@.type() != "string")')
   AND forms.jsonb_array_unique(p_value);

-- Checks a form's JSON Schema (see schema_check_node), then evaluates it once on
-- each kind of value so that "$ref" loops that never reach a value are found now.
CREATE FUNCTION forms.schema_check(p_schema jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    probe jsonb;
BEGIN
    IF p_schema IS NULL THEN
        PERFORM forms.schema_refuse('', 'a form definition has a "schema"');
    END IF;
    PERFORM forms.schema_check_node(p_schema, p_schema, '', 0);
    FOREACH probe IN ARRAY ARRAY['null', 'true', '0', '""', '[]', '{}']::jsonb[] LOOP
        PERFORM forms.schema_ok_0(p_schema, probe, p_schema, 0, 0);
    END LOOP;
EXCEPTION WHEN invalid_regular_expression OR program_limit_exceeded OR statement_too_complex THEN
    PERFORM forms.schema_refuse('', SQLERRM);
END;
$$;

CREATE TABLE forms.form_definitions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT form_definitions_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    name text NOT NULL
        CONSTRAINT form_definitions_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    version integer NOT NULL DEFAULT 1
        CONSTRAINT form_definitions_version_positive CHECK (version > 0),
    -- {"schema": <JSON Schema of the data>, "ui": <optional rendering hints>}
    definition jsonb NOT NULL
        CONSTRAINT form_definitions_definition_shape
            CHECK (jsonb_typeof(definition) = 'object' AND definition ? 'schema'),
    status text NOT NULL DEFAULT 'draft'
        CONSTRAINT form_definitions_status_check CHECK (status IN ('draft', 'active', 'archived')),
    -- Whether "format" is asserted (date, date-time, time, email, uuid, uri, ipv4, ipv6)
    -- rather than an annotation.
    assert_formats boolean NOT NULL DEFAULT false,
    created_by uuid DEFAULT identity.current_user_id()
        CONSTRAINT form_definitions_created_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    -- Events appended to this definition's stream (aggregate type "form").
    revision integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    archived_at timestamptz,
    CONSTRAINT form_definitions_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT form_definitions_organization_id_name_version_key UNIQUE (organization_id, name, version),
    CONSTRAINT form_definitions_organization_id_id_version_key UNIQUE (organization_id, id, version),
    -- Half the event store's event limit: the change's event carries the definition.
    CONSTRAINT form_definitions_definition_size CHECK (octet_length(definition::text) <= 524288)
);

-- At most one active version per form name.
CREATE UNIQUE INDEX form_definitions_one_active_idx
    ON forms.form_definitions (organization_id, name) WHERE status = 'active';
CREATE INDEX form_definitions_organization_id_status_name_idx
    ON forms.form_definitions (organization_id, status, name);

CREATE TABLE forms.form_submissions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    form_definition_id uuid NOT NULL,
    form_version integer NOT NULL,
    data jsonb NOT NULL,
    status text NOT NULL DEFAULT 'draft'
        CONSTRAINT form_submissions_status_check
            CHECK (status IN ('draft', 'submitted', 'approved', 'rejected', 'withdrawn')),
    -- The generated columns the requirements ask for. The validation trigger has
    -- refused a non-integer priority before these are computed.
    title text GENERATED ALWAYS AS (data ->> 'title') STORED,
    priority integer GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(data -> 'priority') = 'number'
             THEN (data -> 'priority')::numeric::integer END) STORED,
    submitted_by uuid DEFAULT identity.current_user_id()
        CONSTRAINT form_submissions_submitted_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    revision integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    submitted_at timestamptz,
    decided_at timestamptz,
    CONSTRAINT form_submissions_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT form_submissions_form_definition_id_fkey
        FOREIGN KEY (organization_id, form_definition_id, form_version)
        REFERENCES forms.form_definitions (organization_id, id, version),
    CONSTRAINT form_submissions_data_size CHECK (octet_length(data::text) <= 524288)
);

CREATE INDEX form_submissions_form_status_idx
    ON forms.form_submissions (form_definition_id, status, created_at, id);
CREATE INDEX form_submissions_organization_id_status_idx
    ON forms.form_submissions (organization_id, status, created_at, id);
CREATE INDEX form_submissions_priority_idx
    ON forms.form_submissions (organization_id, priority DESC, id) WHERE priority IS NOT NULL;
CREATE INDEX form_submissions_data_gin_idx ON forms.form_submissions USING gin (data jsonb_path_ops);

CREATE TRIGGER form_definitions_set_updated_at BEFORE UPDATE ON forms.form_definitions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER form_submissions_set_updated_at BEFORE UPDATE ON forms.form_submissions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- A definition is created as a draft, edited only while a draft, and moves
-- draft -> active -> archived (or draft -> archived). Its schema is checked when saved.
CREATE FUNCTION forms.check_definition() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, forms, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Deleting the organization deletes everything; otherwise only drafts go.
        IF OLD.status <> 'draft' AND pg_trigger_depth() = 1 THEN
            RAISE EXCEPTION 'form definition % is %: only a draft can be deleted', OLD.id, OLD.status
                USING ERRCODE = 'WF004';
        END IF;
        RETURN OLD;
    END IF;
    -- The size rule first: nothing oversized is parsed or checked.
    IF octet_length(NEW.definition::text) > 524288 THEN
        RAISE EXCEPTION 'a form definition is at most 524288 bytes of JSON'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'form_definitions_definition_size',
                  SCHEMA = 'forms', TABLE = 'form_definitions';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'draft' THEN
            RAISE EXCEPTION 'a form definition is created as a draft, not %', NEW.status
                USING ERRCODE = 'WF005';
        END IF;
        NEW.revision := 1;
        NEW.published_at := NULL;
        NEW.archived_at := NULL;
        PERFORM forms.schema_check(NEW.definition -> 'schema');
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.organization_id <> OLD.organization_id OR NEW.name <> OLD.name
       OR NEW.version <> OLD.version THEN
        RAISE EXCEPTION 'a form definition''s id, organization, name and version do not change'
            USING ERRCODE = 'WF004';
    END IF;
    IF OLD.status <> 'draft' AND (NEW.definition IS DISTINCT FROM OLD.definition
                                  OR NEW.assert_formats IS DISTINCT FROM OLD.assert_formats) THEN
        RAISE EXCEPTION 'form definition %/% is %: only a draft can be edited', OLD.name, OLD.version, OLD.status
            USING ERRCODE = 'WF004', HINT = 'create a new version from it';
    END IF;
    IF NEW.status <> OLD.status THEN
        IF NOT ((OLD.status = 'draft' AND NEW.status IN ('active', 'archived'))
                OR (OLD.status = 'active' AND NEW.status = 'archived')) THEN
            RAISE EXCEPTION 'form definition %/% cannot go from % to %', OLD.name, OLD.version, OLD.status, NEW.status
                USING ERRCODE = 'WF005';
        END IF;
        IF NEW.status = 'active' THEN
            NEW.published_at := now();
        ELSE
            NEW.archived_at := now();
        END IF;
    ELSE
        NEW.published_at := OLD.published_at;
        NEW.archived_at := OLD.archived_at;
    END IF;
    IF NEW.definition IS DISTINCT FROM OLD.definition THEN
        PERFORM forms.schema_check(NEW.definition -> 'schema');
    END IF;
    -- A change is an event; writing the same values is not.
    NEW.revision := OLD.revision + CASE WHEN NEW.definition IS DISTINCT FROM OLD.definition
                                             OR NEW.assert_formats IS DISTINCT FROM OLD.assert_formats
                                             OR NEW.status IS DISTINCT FROM OLD.status THEN 1 ELSE 0 END;
    RETURN NEW;
END
$$;

CREATE TRIGGER form_definitions_check BEFORE INSERT OR UPDATE OR DELETE ON forms.form_definitions
    FOR EACH ROW EXECUTE FUNCTION forms.check_definition();

-- Appends the change to the definition's stream ("form"), in the same transaction.
CREATE FUNCTION forms.record_definition_event() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, forms, pg_temp
AS $$
DECLARE
    event_type text;
    payload jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        event_type := 'form.created';
        payload := jsonb_build_object('name', NEW.name, 'version', NEW.version,
                                      'definition', NEW.definition, 'assert_formats', NEW.assert_formats);
    ELSIF NEW.status <> OLD.status THEN
        event_type := CASE NEW.status WHEN 'active' THEN 'form.published' ELSE 'form.archived' END;
        payload := jsonb_build_object('name', NEW.name, 'version', NEW.version, 'from', OLD.status);
    ELSE
        event_type := 'form.edited';
        payload := jsonb_build_object('definition', NEW.definition, 'assert_formats', NEW.assert_formats);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.revision = OLD.revision THEN
        RETURN NULL;
    END IF;
    PERFORM eventstore.append_to_stream('form', NEW.id, NEW.revision - 1, jsonb_build_array(jsonb_build_object(
        'type', event_type,
        'tags', jsonb_build_array('form:' || NEW.id),
        'data', payload,
        'metadata', jsonb_build_object('actor_id', identity.current_user_id()))));
    RETURN NULL;
END
$$;

CREATE TRIGGER form_definitions_record_event AFTER INSERT OR UPDATE ON forms.form_definitions
    FOR EACH ROW EXECUTE FUNCTION forms.record_definition_event();

-- Publishes a draft: the active version of its name, if any, is archived in the same
-- transaction. Publishes of one name take turns (the name's rows are locked first),
-- so concurrent publishes leave exactly one active version: the last to commit.
CREATE FUNCTION forms.form_definition_publish(p_id uuid) RETURNS SETOF forms.form_definitions
LANGUAGE plpgsql
SET search_path = pg_catalog, forms, pg_temp
AS $$
DECLARE
    form_name text;
    form_status text;
BEGIN
    SELECT d.name INTO form_name FROM forms.form_definitions d
    WHERE d.organization_id = identity.current_org_id() AND d.id = p_id;
    IF form_name IS NULL THEN
        RAISE EXCEPTION 'form definition % not found', p_id USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM FROM forms.form_definitions d
    WHERE d.organization_id = identity.current_org_id() AND d.name = form_name
    ORDER BY d.version
    FOR UPDATE;
    SELECT d.status INTO form_status FROM forms.form_definitions d
    WHERE d.organization_id = identity.current_org_id() AND d.id = p_id;
    IF form_status <> 'draft' THEN
        RAISE EXCEPTION 'form definition % is %: only a draft can be published', p_id, form_status
            USING ERRCODE = 'WF005';
    END IF;
    UPDATE forms.form_definitions d SET status = 'archived'
    WHERE d.organization_id = identity.current_org_id() AND d.name = form_name AND d.status = 'active';
    RETURN QUERY UPDATE forms.form_definitions d SET status = 'active'
    WHERE d.organization_id = identity.current_org_id() AND d.id = p_id
    RETURNING d.*;
END
$$;

-- The id of the active version of the form named p_name; WF003 when there is none.
CREATE FUNCTION forms.active_definition_id(p_name text) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, forms, pg_temp
AS $$
DECLARE
    found uuid;
BEGIN
    SELECT d.id INTO found FROM forms.form_definitions d
    WHERE d.organization_id = identity.current_org_id() AND d.name = p_name AND d.status = 'active';
    IF found IS NULL THEN
        RAISE EXCEPTION 'form % has no active version', to_jsonb(p_name)::text USING ERRCODE = 'WF003';
    END IF;
    RETURN found;
END
$$;

-- Submissions: created as a draft or submitted, only to an active form; data valid
-- against the form's schema on every write; the status moves
-- draft -> submitted -> approved | rejected, and draft | submitted -> withdrawn.
-- Approved, rejected and withdrawn submissions do not change.
CREATE FUNCTION forms.check_submission() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, forms, pg_temp
AS $$
DECLARE
    form forms.form_definitions;
    errors jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'submission % is %: only a draft can be deleted', OLD.id, OLD.status
                USING ERRCODE = 'WF005';
        END IF;
        RETURN OLD;
    END IF;
    IF octet_length(NEW.data::text) > 524288 THEN
        RAISE EXCEPTION 'submission data is at most 524288 bytes of JSON'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'form_submissions_data_size',
                  SCHEMA = 'forms', TABLE = 'form_submissions';
    END IF;
    SELECT * INTO form FROM forms.form_definitions d
    WHERE d.organization_id = NEW.organization_id AND d.id = NEW.form_definition_id;
    IF TG_OP = 'INSERT' THEN
        IF form.id IS NULL THEN
            RAISE EXCEPTION 'form definition % not found', NEW.form_definition_id
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'form_submissions_form_definition_id_fkey',
                      SCHEMA = 'forms', TABLE = 'form_submissions';
        END IF;
        -- The definition's version unless named; naming another one fails the key.
        NEW.form_version := coalesce(NEW.form_version, form.version);
        IF form.status <> 'active' THEN
            RAISE EXCEPTION 'form %/% is %: submissions go to the active version', form.name, form.version, form.status
                USING ERRCODE = 'WF003';
        END IF;
        IF NEW.status NOT IN ('draft', 'submitted') THEN
            RAISE EXCEPTION 'a submission starts as a draft or submitted, not %', NEW.status
                USING ERRCODE = 'WF005';
        END IF;
        NEW.revision := 1;
        NEW.submitted_at := CASE WHEN NEW.status = 'submitted' THEN now() END;
        NEW.decided_at := NULL;
    ELSE
        IF NEW.id <> OLD.id OR NEW.organization_id <> OLD.organization_id
           OR NEW.form_definition_id <> OLD.form_definition_id OR NEW.form_version <> OLD.form_version THEN
            RAISE EXCEPTION 'a submission''s id, organization and form do not change'
                USING ERRCODE = 'WF005';
        END IF;
        IF OLD.status IN ('approved', 'rejected', 'withdrawn') THEN
            RAISE EXCEPTION 'submission % is %: it no longer changes', OLD.id, OLD.status
                USING ERRCODE = 'WF005';
        END IF;
        IF NEW.status <> OLD.status THEN
            IF NOT ((OLD.status = 'draft' AND NEW.status IN ('submitted', 'withdrawn'))
                    OR (OLD.status = 'submitted' AND NEW.status IN ('approved', 'rejected', 'withdrawn'))) THEN
                RAISE EXCEPTION 'submission % cannot go from % to %', OLD.id, OLD.status, NEW.status
                    USING ERRCODE = 'WF005';
            END IF;
        END IF;
        NEW.submitted_at := CASE WHEN NEW.status = 'submitted' AND OLD.status = 'draft' THEN now()
                                 ELSE OLD.submitted_at END;
        NEW.decided_at := CASE WHEN NEW.status IN ('approved', 'rejected', 'withdrawn') THEN now() END;
        NEW.revision := OLD.revision + CASE WHEN NEW.data = OLD.data AND NEW.status = OLD.status THEN 0 ELSE 1 END;
        IF NEW.data = OLD.data THEN
            RETURN NEW;
        END IF;
    END IF;
    -- Validate: the fast yes/no first, every error when there is one.
    IF NOT forms.json_schema_valid(form.definition -> 'schema', NEW.data, form.assert_formats)
       OR NOT forms.priority_ok(NEW.data) THEN
        errors := forms.json_schema_errors(form.definition -> 'schema', NEW.data, form.assert_formats);
        IF NOT forms.priority_ok(NEW.data) THEN
            errors := errors || forms.schema_error('/priority', '', 'type',
                'priority is stored as an integer: a whole number from -2147483648 to 2147483647');
        END IF;
        RAISE EXCEPTION 'submission data does not match form %/%: % error(s)', form.name, form.version,
                jsonb_array_length(errors)
            USING ERRCODE = 'WF002', DETAIL = jsonb_build_object('errors', errors)::text;
    END IF;
    RETURN NEW;
END
$$;

-- Whether the data's priority, if any, fits the integer priority column.
CREATE FUNCTION forms.priority_ok(p_data jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NOT p_data ? 'priority'
    OR jsonb_typeof(p_data) <> 'object'
    OR (jsonb_typeof(p_data -> 'priority') = 'number'
        AND (p_data -> 'priority')::numeric = trunc((p_data -> 'priority')::numeric)
        AND (p_data -> 'priority')::numeric BETWEEN -2147483648 AND 2147483647)
    OR jsonb_typeof(p_data -> 'priority') = 'null';

CREATE TRIGGER form_submissions_check BEFORE INSERT OR UPDATE OR DELETE ON forms.form_submissions
    FOR EACH ROW EXECUTE FUNCTION forms.check_submission();

-- Appends the change to the submission's stream ("form_submission").
CREATE FUNCTION forms.record_submission_event() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, forms, pg_temp
AS $$
DECLARE
    events jsonb := '[]';
    tags jsonb := jsonb_build_array('form_submission:' || NEW.id, 'form:' || NEW.form_definition_id);
    meta jsonb := jsonb_build_object('actor_id', identity.current_user_id());
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.revision = OLD.revision THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        events := jsonb_build_array(jsonb_build_object('type', 'form_submission.created', 'tags', tags,
            'data', jsonb_build_object('form_definition_id', NEW.form_definition_id,
                                       'form_version', NEW.form_version, 'status', NEW.status,
                                       'data', NEW.data),
            'metadata', meta));
    ELSE
        IF NEW.data <> OLD.data THEN
            events := events || jsonb_build_object('type', 'form_submission.data_changed', 'tags', tags,
                'data', jsonb_build_object('data', NEW.data), 'metadata', meta);
        END IF;
        IF NEW.status <> OLD.status THEN
            events := events || jsonb_build_object('type', 'form_submission.' || NEW.status, 'tags', tags,
                'data', jsonb_build_object('from', OLD.status, 'to', NEW.status), 'metadata', meta);
        END IF;
    END IF;
    PERFORM eventstore.append_to_stream('form_submission', NEW.id,
        CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.revision END, events);
    RETURN NULL;
END
$$;

CREATE TRIGGER form_submissions_record_event AFTER INSERT OR UPDATE ON forms.form_submissions
    FOR EACH ROW EXECUTE FUNCTION forms.record_submission_event();

ALTER TABLE forms.form_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE forms.form_submissions ENABLE ROW LEVEL SECURITY;
CREATE POLICY form_definitions_tenant ON forms.form_definitions
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());
CREATE POLICY form_submissions_tenant ON forms.form_submissions
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('forms', 'groundwork_owner');

GRANT USAGE ON SCHEMA forms TO groundwork_app, groundwork_readonly;
GRANT SELECT ON forms.form_definitions, forms.form_submissions TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, name, version, definition, assert_formats, status),
      UPDATE (definition, assert_formats, status),
      DELETE
    ON forms.form_definitions TO groundwork_app;
GRANT INSERT (id, form_definition_id, form_version, data, status),
      UPDATE (data, status),
      DELETE
    ON forms.form_submissions TO groundwork_app;

-- Functions run as the caller: the validator for reading and writing roles alike,
-- publishing subject to the caller's grants and policies.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA forms FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA forms TO groundwork_app, groundwork_readonly;
