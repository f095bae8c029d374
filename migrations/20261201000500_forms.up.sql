-- Why: the forms engine (docs/REQUIREMENTS.md, "forms"): versioned form definitions
-- whose JSON Schema is checked when saved, submissions validated against it on every
-- write, and an event per change in the same transaction, per tenant. JSON Schema
-- draft 2020-12 is evaluated in PL/pgSQL, so it runs on managed PostgreSQL without
-- extensions.
--
-- * SQLSTATEs (sqlstates.txt): WF001 invalid form schema (DETAIL {"schema_path"}),
--   WF002 submission data invalid (DETAIL {"errors": [{instance_path, schema_path,
--   keyword, message}, ...]}), WF003 form not active, WF004 definition immutable (not a
--   draft), WF005 status transition not allowed, WF006 a schema, an instance or an
--   evaluation nested too deep (DETAIL {"subject", "limit"}).
-- * The validator: json_schema_valid (yes/no) and json_schema_errors (every error),
--   draft 2020-12 for one document: every keyword but remote references. Two
--   evaluators share the work:
--   - the yes/no one (forms.schema_ok_0 .. _12), for documents that are one resource
--     (no "$id" below the root), which stops at the first failure. It is unrolled into
--     13 functions, one per nesting level: a PL/pgSQL function calling itself loses
--     its cached expression plans at every level (the typical form: 172 us unrolled,
--     207 us as one function; docs/BENCHMARKS.md). The loop below makes them;
--     schema/forms.sql shows every body. It collects no annotations: a schema with
--     unevaluated* or "$dynamicRef" is handed to the complete evaluator;
--   - the complete one (forms.schema_eval and its parts), for every error, for
--     documents with resources (with an index of them, forms.schema_index, built once
--     per call), and for the schemas the yes/no one hands over. It tracks where each
--     schema stands in the document and the dynamic scope, and collects the
--     annotations unevaluatedProperties and unevaluatedItems need, only for them.
-- * Limits: documents nest at most 64 deep, evaluations at most 160 (WF006), checked
--   before anything recursive runs.

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

-- A location in a schema document (a JSON pointer, "" for the root) as the path that
-- "#>" takes: ["$defs", "a/b"] for "/$defs/a~1b".
CREATE FUNCTION forms.pointer_path(p_loc text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY(SELECT replace(replace(t, '~1', '/'), '~0', '~')
             FROM unnest(string_to_array(substr(p_loc, 2), '/')) WITH ORDINALITY u(t, n)
             ORDER BY n);

-- Nesting limits, so that no schema or instance ends in "stack depth limit exceeded"
-- (PostgreSQL's default 2 MB of stack, which the application role cannot raise). A
-- schema or an instance nests at most 64 arrays and objects deep (a container at level
-- 64, counting the top value as level 0, is refused before evaluation), and an
-- evaluation applies at most 160 subschemas one inside the other (each "$ref" counts):
-- a schema recursing through one "$ref" per level of the instance takes 128 of them at
-- the deepest instance. Both evaluators count the same way; the complete one with an
-- index, the heaviest, ran out of stack at 210 to 260 (docs/BENCHMARKS.md). Refused
-- with SQLSTATE WF006.

-- True when p_value nests at most 64 arrays and objects deep; jsonpath walks it in C,
-- so the check cannot run out of stack itself.
CREATE FUNCTION forms.nesting_ok(p_value jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NOT jsonb_path_exists(p_value, 'strict $.**{64} ? (@.type() == "object" || @.type() == "array")');

-- Refuses a schema or instance ("schema", "instance") or an evaluation ("evaluation")
-- nested too deep: SQLSTATE WF006, DETAIL {"subject", "limit"}.
CREATE FUNCTION forms.nesting_refuse(p_subject text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    lim constant integer := CASE p_subject WHEN 'evaluation' THEN 160 ELSE 64 END;
BEGIN
    RAISE EXCEPTION '%', CASE p_subject
            WHEN 'evaluation' THEN format('the evaluation nests deeper than %s schemas', lim)
            ELSE format('the %s nests deeper than %s arrays and objects', p_subject, lim) END
        USING ERRCODE = 'WF006', DETAIL = jsonb_build_object('subject', p_subject, 'limit', lim)::text;
END;
$$;

-- URIs (RFC 3986), for "$id" and "$ref". The base URI of a schema without "$id" is
-- forms.schema_default_base(): references inside one document resolve the same way
-- whatever its retrieval URI would have been.
CREATE FUNCTION forms.schema_default_base()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'https://forms.invalid/schema.json';

-- Percent-decodes a URI component (a fragment); NULL when it is malformed.
CREATE FUNCTION forms.uri_decode(p_text text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    rest text := p_text;
    decoded bytea := ''::bytea;
BEGIN
    IF strpos(p_text, '%') = 0 THEN
        RETURN p_text;
    ELSIF p_text !~ '^([^%]|%[0-9A-Fa-f]{2})*$' THEN
        RETURN NULL;
    END IF;
    WHILE rest <> '' LOOP
        IF left(rest, 1) = '%' THEN
            decoded := decoded || decode(substr(rest, 2, 2), 'hex');
            rest := substr(rest, 4);
        ELSE
            decoded := decoded || convert_to(left(rest, 1), 'UTF8');
            rest := substr(rest, 2);
        END IF;
    END LOOP;
    RETURN convert_from(decoded, 'UTF8');
END;
$$;

-- RFC 3986 5.2.4: a path without "." and ".." segments.
CREATE FUNCTION forms.uri_remove_dots(p_path text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    input text := p_path;
    output text := '';
    segment text;
BEGIN
    IF strpos('/' || p_path || '/', '/./') = 0 AND strpos('/' || p_path || '/', '/../') = 0 THEN
        RETURN p_path;
    END IF;
    WHILE input <> '' LOOP
        IF input LIKE '../%' THEN
            input := substr(input, 4);
        ELSIF input LIKE './%' OR input LIKE '/./%' THEN
            input := substr(input, 3);
        ELSIF input = '/.' THEN
            input := '/';
        ELSIF input LIKE '/../%' OR input = '/..' THEN
            input := '/' || substr(input, 5);
            output := regexp_replace(output, '/?[^/]*$', '');
        ELSIF input IN ('.', '..') THEN
            input := '';
        ELSE
            segment := substring(input FROM '^/?[^/]*');
            output := output || segment;
            input := substr(input, length(segment) + 1);
        END IF;
    END LOOP;
    RETURN output;
END;
$$;

-- RFC 3986 3: a URI reference's parts {scheme ("https:"), authority ("//host"), path,
-- query ("?q"), fragment ("#f")}, each NULL when absent. String functions rather than
-- one regular expression with groups, which PostgreSQL takes some 60 us to match.
CREATE FUNCTION forms.uri_parts(p_uri text)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    rest text := p_uri;
    scheme text;
    authority text;
    query text;
    fragment text;
    at integer;
BEGIN
    at := strpos(rest, '#');
    IF at > 0 THEN
        fragment := substr(rest, at);
        rest := left(rest, at - 1);
    END IF;
    at := strpos(rest, '?');
    IF at > 0 THEN
        query := substr(rest, at);
        rest := left(rest, at - 1);
    END IF;
    IF rest ~ '^[A-Za-z][A-Za-z0-9+.-]*:' THEN
        at := strpos(rest, ':');
        scheme := left(rest, at);
        rest := substr(rest, at + 1);
    END IF;
    IF left(rest, 2) = '//' THEN
        at := strpos(substr(rest, 3), '/');
        authority := CASE WHEN at = 0 THEN rest ELSE left(rest, at + 1) END;
        rest := CASE WHEN at = 0 THEN '' ELSE substr(rest, at + 2) END;
    END IF;
    RETURN ARRAY[scheme, authority, rest, query, fragment];
END;
$$;

-- RFC 3986 5.2.2: the URI p_ref refers to, seen from the base URI p_base (the
-- reference's fragment kept, the base's dropped).
CREATE FUNCTION forms.uri_resolve(p_base text, p_ref text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    r constant text[] := forms.uri_parts(p_ref);
    b text[];
    authority text := r[2];
    path text := r[3];
    query text := r[4];
BEGIN
    IF r[1] IS NOT NULL THEN
        RETURN r[1] || coalesce(authority, '') || forms.uri_remove_dots(path) || coalesce(query, '') || coalesce(r[5], '');
    END IF;
    b := forms.uri_parts(p_base);
    IF authority IS NULL THEN
        authority := b[2];
        IF path = '' THEN
            path := b[3];
            query := coalesce(query, b[4]);
        ELSIF left(path, 1) <> '/' THEN
            -- Merge (5.2.3): the base path up to its last "/", then the reference.
            path := CASE WHEN b[2] IS NOT NULL AND b[3] = '' THEN '/' || path
                         ELSE left(b[3], length(b[3]) - strpos(reverse(b[3]), '/') + 1) || path END;
            IF strpos(b[3], '/') = 0 AND NOT (b[2] IS NOT NULL AND b[3] = '') THEN
                path := r[3];
            END IF;
        END IF;
    END IF;
    RETURN coalesce(b[1], '') || coalesce(authority, '') || forms.uri_remove_dots(path) || coalesce(query, '')
        || coalesce(r[5], '');
END;
$$;

-- References in a document that is one resource (no "$id" below its root): the
-- yes/no evaluator and the complete one without an index resolve them here.

-- The schema with "$anchor" or "$dynamicAnchor" p_name in p_root, or NULL.
CREATE FUNCTION forms.schema_anchor(p_root jsonb, p_name text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_path_query_first(p_root, 'strict $.** ? (@."$anchor" == $a || @."$dynamicAnchor" == $a)',
                              jsonb_build_object('a', p_name), true);

-- Resolves any reference into p_root that is not a plain "#/..." pointer: "#" and
-- "", pointers with escapes (percent-decoding, then ~0 and ~1), anchors ("#name"), and
-- URIs naming the root's own "$id" ("tree.json#/$defs/node"). NULL when it does not
-- resolve inside the document.
CREATE FUNCTION forms.schema_resolve_pointer(p_root jsonb, p_ref text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    fragment text := p_ref;
    base text;
    target text;
    token text;
    node jsonb := p_root;
BEGIN
    IF left(p_ref, 1) <> '#' AND p_ref <> '' THEN
        base := forms.schema_default_base();
        IF jsonb_typeof(p_root -> '$id') = 'string' THEN
            base := forms.uri_resolve(base, p_root ->> '$id');
        END IF;
        target := forms.uri_resolve(base, p_ref);
        IF split_part(target, '#', 1) <> split_part(base, '#', 1) THEN
            RETURN NULL;
        END IF;
        fragment := coalesce('#' || nullif(substring(target FROM '#(.*)$'), ''), '#');
    END IF;
    fragment := forms.uri_decode(substr(fragment, 2));
    IF fragment IS NULL THEN
        RETURN NULL;
    ELSIF fragment = '' THEN
        RETURN p_root;
    ELSIF left(fragment, 1) <> '/' THEN
        RETURN forms.schema_anchor(p_root, fragment);
    END IF;
    FOREACH token IN ARRAY forms.pointer_path(fragment) LOOP
        IF jsonb_typeof(node) = 'object' THEN
            node := node -> token;
        ELSIF jsonb_typeof(node) = 'array' AND token ~ '^(0|[1-9][0-9]{0,8})$' THEN
            node := node -> token::integer;
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

-- The value a reference points at inside p_root (a document that is one resource), or
-- NULL. A fragment of plain tokens (object keys, canonical array indexes) resolves in
-- one step, inlined into the caller; anything else goes through the resolver above.
CREATE FUNCTION forms.schema_resolve(p_root jsonb, p_ref text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN p_ref ~ '^#(/([^/%~0-9-][^/%~]*|0|[1-9][0-9]{0,8}))+$'
            THEN p_root #> string_to_array(substr(p_ref, 3), '/')
            ELSE forms.schema_resolve_pointer(p_root, p_ref) END;

-- Whether a schema document has resources below its root ("$id" anywhere but the
-- top): then references depend on where they stand, and only the complete evaluator,
-- with the document's index, resolves them. A property named "$id" counts too, which
-- costs that schema the faster evaluator and nothing else.
CREATE FUNCTION forms.schema_has_resources(p_schema jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_path_exists(p_schema, 'strict $.*.**."$id"', '{}', true);

-- The index of a document with resources: every resource by URI ("res"), every anchor
-- by URI ("anchors"), each resource's dynamic anchors ("dyn": {resource: {name:
-- target}}), and the target of every "$ref" and "$dynamicRef" by the location of the
-- schema holding it ("$ref", "$dynamicRef": {location: target}), resolved once per
-- evaluation instead of once per use. A target is {"loc": JSON pointer, "path": its
-- "#>" path as text, "owner": the location of its resource, "anchor": the name a
-- "$dynamicRef" looks for in the dynamic scope, when it does}.
--
-- The document's schemas are visited from a work list rather than by recursion (a
-- PL/pgSQL function calling itself runs its statements the slow way at every level):
-- each with its location, the base URI it is under and the location of its resource.
CREATE FUNCTION forms.schema_index(p_root jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    schemas jsonb[] := ARRAY[p_root];
    locs text[] := ARRAY[''];
    bases text[] := ARRAY[forms.schema_default_base()];
    resources text[] := ARRAY[''];
    refs jsonb := '[]';
    idx jsonb := jsonb_build_object('res', jsonb_build_object(forms.schema_default_base(), ''),
                                    'anchors', '{}'::jsonb, 'dyn', '{}'::jsonb,
                                    '$ref', '{}'::jsonb, '$dynamicRef', '{}'::jsonb);
    -- What makes a schema worth a visit: identifiers, references, subschemas.
    keywords constant text[] := '{$id,$anchor,$dynamicAnchor,$ref,$dynamicRef,additionalProperties,propertyNames,items,contains,not,if,then,else,unevaluatedItems,unevaluatedProperties,contentSchema,properties,patternProperties,$defs,dependentSchemas,prefixItems,allOf,anyOf,oneOf}';
    next integer := 1;
    s jsonb;
    loc text;
    base text;
    resource text;
    k text;
    v jsonb;
    names jsonb;
    n integer;
    ref jsonb;
    target jsonb;
BEGIN
    WHILE next <= cardinality(schemas) LOOP
        s := schemas[next];
        loc := locs[next];
        base := bases[next];
        resource := resources[next];
        next := next + 1;
        IF s ?| '{$id,$anchor,$dynamicAnchor,$ref,$dynamicRef}'::text[] THEN
            IF jsonb_typeof(s -> '$id') = 'string' THEN
                base := split_part(forms.uri_resolve(base, s ->> '$id'), '#', 1);
                resource := loc;
                IF NOT idx -> 'res' ? base OR loc = '' THEN
                    idx := jsonb_set(idx, ARRAY['res', base], to_jsonb(loc));
                END IF;
            END IF;
            IF jsonb_typeof(s -> '$anchor') = 'string' THEN
                idx := jsonb_set(idx, ARRAY['anchors', base || '#' || (s ->> '$anchor')], to_jsonb(loc));
            END IF;
            IF jsonb_typeof(s -> '$dynamicAnchor') = 'string' THEN
                idx := jsonb_set(idx, ARRAY['anchors', base || '#' || (s ->> '$dynamicAnchor')], to_jsonb(loc));
                idx := jsonb_set(idx, ARRAY['dyn', resource],
                    coalesce(idx #> ARRAY['dyn', resource], '{}') || jsonb_build_object(s ->> '$dynamicAnchor',
                        jsonb_build_object('loc', loc, 'path', forms.pointer_path(loc)::text, 'owner', resource)));
            END IF;
            FOREACH k IN ARRAY ARRAY['$ref', '$dynamicRef'] LOOP
                IF jsonb_typeof(s -> k) = 'string' THEN
                    refs := refs || jsonb_build_array(jsonb_build_array(k, loc, base, s ->> k));
                END IF;
            END LOOP;
        END IF;
        -- Its subschemas worth a visit (a map's keys from jsonpath: no query per schema).
        IF s ?| '{additionalProperties,propertyNames,items,contains,not,if,then,else,unevaluatedItems,unevaluatedProperties,contentSchema}'::text[] THEN
            FOREACH k IN ARRAY '{additionalProperties,propertyNames,items,contains,not,if,then,else,unevaluatedItems,unevaluatedProperties,contentSchema}'::text[] LOOP
                v := s -> k;
                CONTINUE WHEN jsonb_typeof(v) IS DISTINCT FROM 'object' OR NOT v ?| keywords;
                schemas := schemas || v;
                locs := locs || (loc || '/' || k);
                bases := bases || base;
                resources := resources || resource;
            END LOOP;
        END IF;
        CONTINUE WHEN NOT s ?| '{properties,patternProperties,$defs,dependentSchemas,prefixItems,allOf,anyOf,oneOf}'::text[];
        FOREACH k IN ARRAY '{properties,patternProperties,$defs,dependentSchemas,prefixItems,allOf,anyOf,oneOf}'::text[] LOOP
            v := s -> k;
            IF jsonb_typeof(v) = 'object' THEN
                names := jsonb_path_query_array(v, '$.keyvalue().key');
                FOR n IN 0 .. jsonb_array_length(names) - 1 LOOP
                    CONTINUE WHEN jsonb_typeof(v -> (names ->> n)) <> 'object' OR NOT (v -> (names ->> n)) ?| keywords;
                    schemas := schemas || (v -> (names ->> n));
                    locs := locs || (loc || '/' || k || '/' || forms.pointer_token(names ->> n));
                    bases := bases || base;
                    resources := resources || resource;
                END LOOP;
            ELSIF jsonb_typeof(v) = 'array' THEN
                FOR n IN 0 .. jsonb_array_length(v) - 1 LOOP
                    CONTINUE WHEN jsonb_typeof(v -> n) <> 'object' OR NOT (v -> n) ?| keywords;
                    schemas := schemas || (v -> n);
                    locs := locs || (loc || '/' || k || '/' || n);
                    bases := bases || base;
                    resources := resources || resource;
                END LOOP;
            END IF;
        END LOOP;
    END LOOP;
    -- The references, now that every resource and anchor is known.
    FOR n IN 0 .. jsonb_array_length(refs) - 1 LOOP
        ref := refs -> n;
        target := forms.schema_index_target(p_root, idx, ref ->> 0, ref ->> 2, ref ->> 3);
        IF target IS NOT NULL THEN
            idx := jsonb_set(idx, ARRAY[ref ->> 0, ref ->> 1], target);
        END IF;
    END LOOP;
    RETURN idx;
END;
$$;

-- The target of the reference p_ref (keyword p_keyword) standing where the base URI is
-- p_base, in the shape forms.schema_index records; NULL when it is not in the document
-- (a remote reference) or points at nothing.
CREATE FUNCTION forms.schema_index_target(p_root jsonb, p_idx jsonb, p_keyword text, p_base text, p_ref text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    uri constant text := forms.uri_resolve(p_base, p_ref);
    doc constant text := split_part(uri, '#', 1);
    fragment constant text := forms.uri_decode(coalesce(substring(uri FROM '#(.*)$'), ''));
    resource constant text := p_idx #>> ARRAY['res', doc];
    loc text;
    owner text := '';
    resources jsonb;
    r text;
    n integer;
BEGIN
    IF resource IS NULL OR fragment IS NULL THEN
        RETURN NULL;
    ELSIF fragment = '' THEN
        loc := resource;
    ELSIF left(fragment, 1) = '/' THEN
        loc := resource || fragment;
        IF p_root #> forms.pointer_path(loc) IS NULL THEN
            RETURN NULL;
        END IF;
    ELSE
        loc := p_idx #>> ARRAY['anchors', doc || '#' || fragment];
        IF loc IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    -- The resource holding the target: the longest resource location above it.
    resources := jsonb_path_query_array(p_idx -> 'res', '$.*');
    FOR n IN 0 .. jsonb_array_length(resources) - 1 LOOP
        r := resources ->> n;
        IF (loc = r OR left(loc, length(r) + 1) = r || '/') AND length(r) > length(owner) THEN
            owner := r;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('loc', loc, 'path', forms.pointer_path(loc)::text, 'owner', owner)
        || CASE WHEN p_keyword = '$dynamicRef' AND fragment !~ '^/'
                     AND p_root #>> (forms.pointer_path(loc) || '{$dynamicAnchor}'::text[]) = fragment
                THEN jsonb_build_object('anchor', fragment) ELSE '{}' END;
END;
$$;

-- The base URI in effect at location p_loc of p_root: the "$id"s on the way down,
-- resolved in turn. For references in places the index does not walk (a "$ref" to a
-- schema under an unknown keyword).
CREATE FUNCTION forms.schema_base_at(p_root jsonb, p_loc text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    base text := forms.schema_default_base();
    node jsonb := p_root;
    token text;
BEGIN
    IF jsonb_typeof(node -> '$id') = 'string' THEN
        base := split_part(forms.uri_resolve(base, node ->> '$id'), '#', 1);
    END IF;
    FOREACH token IN ARRAY forms.pointer_path(p_loc) LOOP
        node := CASE jsonb_typeof(node) WHEN 'array' THEN node -> token::integer ELSE node -> token END;
        IF jsonb_typeof(node -> '$id') = 'string' THEN
            base := split_part(forms.uri_resolve(base, node ->> '$id'), '#', 1);
        END IF;
    END LOOP;
    RETURN base;
END;
$$;

-- The target of the "$ref" or "$dynamicRef" (p_keyword) of the schema at location
-- p_loc, in a document with an index: recorded by the index, else resolved now; for a
-- "$dynamicRef" whose target has the "$dynamicAnchor" it names, the outermost resource
-- of the dynamic scope p_scope that has one. NULL when it does not resolve.
CREATE FUNCTION forms.schema_reference(p_root jsonb, p_idx jsonb, p_loc text, p_scope text[], p_keyword text, p_ref text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    target jsonb := p_idx #> ARRAY[p_keyword, p_loc];
    dynamic jsonb;
    resource text;
BEGIN
    IF target IS NULL THEN
        target := forms.schema_index_target(p_root, p_idx, p_keyword, forms.schema_base_at(p_root, p_loc), p_ref);
    END IF;
    IF target ? 'anchor' THEN
        FOREACH resource IN ARRAY p_scope LOOP
            dynamic := p_idx #> ARRAY['dyn', resource, target ->> 'anchor'];
            IF dynamic IS NOT NULL THEN
                RETURN dynamic;
            END IF;
        END LOOP;
    END IF;
    RETURN target;
END;
$$;

-- Patterns are PostgreSQL regular expressions (ARE). ECMA-262's Unicode property
-- escapes have no ARE syntax, so a pattern with \p{...} or \P{...} is translated to
-- the character classes that mean exactly the same under ICU's root collation
-- ("und-x-icu"), and matched with it, whatever the database's own collation:
--
--   \p{L} \p{Letter}                  [[:alpha:]]   general category L
--   \p{Lu} \p{Uppercase_Letter}       [[:upper:]]   Lu
--   \p{Ll} \p{Lowercase_Letter}       [[:lower:]]   Ll
--   \p{Nd} \p{Decimal_Number} \p{digit}  [[:digit:]]   Nd
--   \p{P} \p{Punctuation} \p{punct}   [[:punct:]]   P
--   \p{ASCII}                         [\x01-\x7f]   U+0000 cannot occur in jsonb
--
-- (also written gc=X or General_Category=X); \P{...} is the complement. Since ICU's
-- \d and \w are Unicode classes, such a pattern's \d, \D, \w and \W are written out as
-- ECMA-262's ASCII ones. Anything else (other properties, scripts, a \P, \D or \W
-- inside brackets) raises invalid_regular_expression, which refuses the form when it
-- is saved.

-- The ARE character class for the Unicode property p_name (without braces), or NULL.
CREATE FUNCTION forms.pattern_property_class(p_name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE regexp_replace(p_name, '^(gc|General_Category)=', '')
    WHEN 'L' THEN '[:alpha:]' WHEN 'Letter' THEN '[:alpha:]'
    WHEN 'Lu' THEN '[:upper:]' WHEN 'Uppercase_Letter' THEN '[:upper:]'
    WHEN 'Ll' THEN '[:lower:]' WHEN 'Lowercase_Letter' THEN '[:lower:]'
    WHEN 'Nd' THEN '[:digit:]' WHEN 'Decimal_Number' THEN '[:digit:]' WHEN 'digit' THEN '[:digit:]'
    WHEN 'P' THEN '[:punct:]' WHEN 'Punctuation' THEN '[:punct:]' WHEN 'punct' THEN '[:punct:]'
    ELSE CASE WHEN p_name = 'ASCII' THEN '\x01-\x7f' END
END;

-- p_pattern with its property escapes translated (see above).
CREATE FUNCTION forms.pattern_translate(p_pattern text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    chars constant text[] := regexp_split_to_array(p_pattern, '');
    n constant integer := cardinality(chars);
    k integer := 1;
    c text;
    out text := '';
    in_class boolean := false;
    name text;
    class text;
    negated boolean;
BEGIN
    WHILE k <= n LOOP
        c := chars[k];
        IF c = '\' AND k < n THEN
            c := chars[k + 1];
            k := k + 2;
            IF c IN ('p', 'P') THEN
                name := substring(array_to_string(chars[k:n], '') FROM '^\{([A-Za-z_=]+)\}');
                class := forms.pattern_property_class(name);
                IF class IS NULL THEN
                    RAISE EXCEPTION 'the Unicode property escape \%{%} is not supported', c, coalesce(name, '')
                        USING ERRCODE = 'invalid_regular_expression',
                              HINT = 'supported: L, Lu, Ll, Nd (digit), P (punct) and ASCII, with \p or \P';
                END IF;
                k := k + length(name) + 2;
                negated := c = 'P';
            ELSIF c IN ('d', 'D', 'w', 'W') THEN
                class := CASE lower(c) WHEN 'd' THEN '0-9' ELSE 'A-Za-z0-9_' END;
                negated := c IN ('D', 'W');
            ELSE
                out := out || '\' || c;
                CONTINUE;
            END IF;
            IF in_class AND negated THEN
                RAISE EXCEPTION 'a negated class (\%) inside brackets is not supported with Unicode property escapes', c
                    USING ERRCODE = 'invalid_regular_expression';
            END IF;
            out := out || CASE WHEN in_class THEN class
                               WHEN negated THEN '[^' || class || ']'
                               ELSE '[' || class || ']' END;
            CONTINUE;
        END IF;
        IF NOT in_class AND c = '[' THEN
            in_class := true;
            out := out || c;
            k := k + 1;
            -- A "]" right after "[" or "[^" is a member, not the end.
            IF chars[k] = '^' THEN
                out := out || '^';
                k := k + 1;
            END IF;
            IF chars[k] = ']' THEN
                out := out || ']';
                k := k + 1;
            END IF;
            CONTINUE;
        ELSIF in_class AND c = ']' THEN
            in_class := false;
        END IF;
        out := out || c;
        k := k + 1;
    END LOOP;
    RETURN out;
END;
$$;

-- Whether p_string matches p_pattern when the pattern has property escapes: the
-- translated pattern under ICU's root collation. PL/pgSQL, so that the collation is
-- looked up when used: a server without ICU refuses such patterns, nothing else.
CREATE FUNCTION forms.pattern_test_unicode(p_string text, p_pattern text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    RETURN p_string COLLATE "und-x-icu" ~ forms.pattern_translate(p_pattern);
END;
$$;

-- Whether p_string matches the pattern p_pattern ("pattern", "patternProperties").
-- Inlined into the caller: a pattern without \p or \P is matched as it is.
CREATE FUNCTION forms.pattern_test(p_string text, p_pattern text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN strpos(p_pattern, '\p') = 0 AND strpos(p_pattern, '\P') = 0 THEN p_string ~ p_pattern
            ELSE forms.pattern_test_unicode(p_string, p_pattern) END;

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

-- The complete evaluator: json_schema_errors always, json_schema_valid for documents
-- with resources, and the yes/no evaluator's delegate for a schema with unevaluated*
-- or "$dynamicRef". Every keyword; every error (mode & 1) or just the first; returns
-- the errors, NULL when the value is valid. The parameters, shared by its parts:
--   s, i          the schema and the value
--   root, idx     the whole schema document, and its index (forms.schema_index) or NULL
--                 when it is one resource
--   ipath, spath  the JSON pointers of the value and of the schema as evaluated (through
--                 "$ref"), for the errors
--   loc, scope    with an index: the schema's location in the document, and the dynamic
--                 scope (the locations of the resources entered, outermost first)
--   mode          1: every error, not just the first; 2: formats are asserted
--   hops          references followed since the value last changed (loop guard)
--   depth         subschemas applied so far, one inside the other (forms.nesting_refuse)
CREATE FUNCTION forms.schema_eval(s jsonb, i jsonb, root jsonb, idx jsonb, ipath text, spath text, loc text,
                                  scope text[], mode integer, hops integer, depth integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    all_errors constant boolean := (mode & 1) = 1;
    it constant text := jsonb_typeof(i);
    errs jsonb;
    r jsonb;
    t jsonb;
    k text;
BEGIN
    IF jsonb_typeof(s) <> 'object' THEN
        IF s = 'true' THEN
            RETURN NULL;
        ELSIF s = 'false' THEN
            RETURN forms.schema_error(ipath, spath, 'false', 'no value is allowed here');
        END IF;
        RAISE EXCEPTION 'a schema must be an object or a boolean'
            USING ERRCODE = 'WF001', DETAIL = jsonb_build_object('schema_path', spath)::text;
    ELSIF depth >= 160 THEN
        PERFORM forms.nesting_refuse('evaluation');
    END IF;
    IF idx IS NOT NULL AND s ? '$id' THEN
        scope := forms.scope_enter(scope, loc);
    ELSIF idx IS NULL AND depth > 0 AND (all_errors OR NOT s ?| '{unevaluatedProperties,unevaluatedItems,$dynamicRef}'::text[])
          AND forms.schema_ok_0(s, i, root, (mode & 2) | (depth << 8), hops) THEN
        -- Most of a document is valid, and the yes/no evaluator says so faster: only
        -- the values it fails are looked at keyword by keyword (not the whole document:
        -- json_schema_errors is mostly asked about invalid ones; nor, when stopping at
        -- the first error, a schema the yes/no evaluator would hand back).
        RETURN NULL;
    END IF;
    IF s ?| '{type,enum,const,minLength,maxLength,pattern,format,minimum,maximum,exclusiveMinimum,exclusiveMaximum,multipleOf}'::text[] THEN
        errs := forms.schema_eval_value(s, i, ipath, spath, mode);
        IF errs IS NOT NULL AND NOT all_errors THEN RETURN errs; END IF;
    END IF;
    IF it = 'object' THEN
        IF s ?| '{properties,patternProperties,additionalProperties}'::text[] THEN
            r := forms.schema_eval_properties(s, i, root, idx, ipath, spath, loc, scope, mode, depth);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
                r := NULL;
            END IF;
        END IF;
        IF s ?| '{required,propertyNames,minProperties,maxProperties,dependentRequired,dependentSchemas}'::text[] THEN
            r := forms.schema_eval_object(s, i, root, idx, ipath, spath, loc, scope, mode, hops, depth);
        END IF;
    ELSIF it = 'array' AND s ?| '{prefixItems,items,contains,minItems,maxItems,uniqueItems}'::text[] THEN
        r := forms.schema_eval_array(s, i, root, idx, ipath, spath, loc, scope, mode, depth);
    END IF;
    IF r IS NOT NULL THEN
        errs := coalesce(errs, '[]') || r;
        IF NOT all_errors THEN RETURN errs; END IF;
    END IF;
    -- References here rather than with the other applicators: one call less per
    -- level of a recursive schema, whose depth the stack limits.
    IF s ?| '{$ref,$dynamicRef}'::text[] THEN
        FOREACH k IN ARRAY ARRAY['$ref', '$dynamicRef'] LOOP
            CONTINUE WHEN NOT s ? k;
            t := forms.schema_target(s, root, idx, spath, loc, scope, k, hops);
            r := forms.schema_eval(t -> 'schema', i, root, idx, ipath, spath || '/' || k, t ->> 'loc',
                                   forms.scope_enter(scope, t ->> 'owner'), mode, hops + 1, depth + 1);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END LOOP;
    END IF;
    IF s ?| '{allOf,anyOf,oneOf,not,if}'::text[] THEN
        r := forms.schema_eval_applicators(s, i, root, idx, ipath, spath, loc, scope, mode, hops, depth);
        IF r IS NOT NULL THEN
            errs := coalesce(errs, '[]') || r;
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
    END IF;
    -- Last, once every other keyword has left its annotations.
    IF s ?| '{unevaluatedProperties,unevaluatedItems}'::text[] THEN
        r := forms.schema_eval_unevaluated(s, i, root, idx, ipath, spath, loc, scope, mode, hops, depth, errs IS NULL);
        IF r IS NOT NULL THEN
            errs := coalesce(errs, '[]') || r;
        END IF;
    END IF;
    RETURN errs;
END;
$$;

-- The keywords about the value itself: "type", "const", "enum"; for a string
-- "minLength", "maxLength" (in code points), "pattern" and "format" (when asserted);
-- for a number "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" and
-- "multipleOf". Numbers compare by value (1.0 is 1).
CREATE FUNCTION forms.schema_eval_value(s jsonb, i jsonb, ipath text, spath text, mode integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    it constant text := jsonb_typeof(i);
    checks constant text[] := CASE it
        WHEN 'string' THEN '{type,const,enum,minLength,maxLength,pattern,format}'::text[]
        WHEN 'number' THEN '{type,const,enum,minimum,maximum,exclusiveMinimum,exclusiveMaximum,multipleOf}'::text[]
        ELSE '{type,const,enum}'::text[] END;
    k text;
    sub jsonb;
    message text;
    r jsonb;
    errs jsonb;
BEGIN
    FOREACH k IN ARRAY checks LOOP
        sub := s -> k;
        CONTINUE WHEN sub IS NULL;
        message := CASE k
            WHEN 'type' THEN
                CASE WHEN NOT (sub ? it OR (it = 'number' AND sub ? 'integer' AND (i::numeric) = trunc(i::numeric)))
                     THEN format('%s is not of type %s', it, sub) END
            WHEN 'const' THEN
                CASE WHEN sub <> i THEN format('the value must be %s', sub) END
            WHEN 'enum' THEN
                CASE WHEN NOT (CASE WHEN it IN ('object', 'array') THEN forms.jsonb_array_has(sub, i)
                                    ELSE sub @> jsonb_build_array(i) END)
                     THEN format('the value must be one of %s', sub) END
            WHEN 'minLength' THEN
                CASE WHEN length(i #>> '{}') < sub::numeric
                     THEN format('the string is %s characters long, shorter than the minimum of %s', length(i #>> '{}'), sub) END
            WHEN 'maxLength' THEN
                CASE WHEN length(i #>> '{}') > sub::numeric
                     THEN format('the string is %s characters long, longer than the maximum of %s', length(i #>> '{}'), sub) END
            WHEN 'pattern' THEN
                CASE WHEN NOT forms.pattern_test(i #>> '{}', sub #>> '{}')
                     THEN format('the string does not match the pattern %s', sub) END
            WHEN 'format' THEN
                CASE WHEN (mode & 2) = 2 AND NOT forms.format_matches(sub #>> '{}', i #>> '{}')
                     THEN format('the string is not a valid %s', sub #>> '{}') END
            WHEN 'minimum' THEN
                CASE WHEN i::numeric < sub::numeric THEN format('%s is less than the minimum of %s', i, sub) END
            WHEN 'maximum' THEN
                CASE WHEN i::numeric > sub::numeric THEN format('%s is greater than the maximum of %s', i, sub) END
            WHEN 'exclusiveMinimum' THEN
                CASE WHEN i::numeric <= sub::numeric THEN format('%s is not greater than %s', i, sub) END
            WHEN 'exclusiveMaximum' THEN
                CASE WHEN i::numeric >= sub::numeric THEN format('%s is not less than %s', i, sub) END
            ELSE
                CASE WHEN i::numeric % sub::numeric <> 0 THEN format('%s is not a multiple of %s', i, sub) END
            END;
        CONTINUE WHEN message IS NULL;
        r := forms.schema_error(ipath, spath || '/' || k, k, message);
        IF (mode & 1) = 0 THEN RETURN r; END IF;
        errs := coalesce(errs, '[]') || r;
    END LOOP;
    RETURN errs;
END;
$$;

-- "properties", "patternProperties", "additionalProperties": each property against the
-- schemas that apply to it.
CREATE FUNCTION forms.schema_eval_properties(s jsonb, i jsonb, root jsonb, idx jsonb, ipath text, spath text,
                                             loc text, scope text[], mode integer, depth integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    all_errors constant boolean := (mode & 1) = 1;
    props constant jsonb := s -> 'properties';
    pprops constant jsonb := s -> 'patternProperties';
    addl constant jsonb := s -> 'additionalProperties';
    errs jsonb;
    r jsonb;
    k text;
    v jsonb;
    pk text;
    pv jsonb;
    token text;
    matched boolean;
BEGIN
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(i) e LOOP
        token := '/' || forms.pointer_token(k);
        matched := coalesce(props ? k, false);
        IF matched AND props -> k <> 'true' THEN
            r := forms.schema_eval(props -> k, v, root, idx, ipath || token, spath || '/properties' || token,
                                   loc || '/properties' || token, scope, mode, 0, depth + 1);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
        IF pprops IS NOT NULL THEN
            FOR pk, pv IN SELECT e.key, e.value FROM jsonb_each(pprops) e LOOP
                CONTINUE WHEN NOT forms.pattern_test(k, pk);
                matched := true;
                r := forms.schema_eval(pv, v, root, idx, ipath || token,
                    spath || '/patternProperties/' || forms.pointer_token(pk),
                    loc || '/patternProperties/' || forms.pointer_token(pk), scope, mode, 0, depth + 1);
                IF r IS NOT NULL THEN
                    errs := coalesce(errs, '[]') || r;
                    IF NOT all_errors THEN RETURN errs; END IF;
                END IF;
            END LOOP;
        END IF;
        IF NOT matched AND addl IS NOT NULL THEN
            IF addl = 'false' THEN
                r := forms.schema_error(ipath || token, spath || '/additionalProperties', 'additionalProperties',
                    format('the property %s is not allowed', to_jsonb(k)));
            ELSE
                r := forms.schema_eval(addl, v, root, idx, ipath || token, spath || '/additionalProperties',
                                       loc || '/additionalProperties', scope, mode, 0, depth + 1);
            END IF;
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END IF;
    END LOOP;
    RETURN errs;
END;
$$;

-- "required", "propertyNames", "minProperties", "maxProperties", "dependentRequired",
-- "dependentSchemas".
CREATE FUNCTION forms.schema_eval_object(s jsonb, i jsonb, root jsonb, idx jsonb, ipath text, spath text,
                                         loc text, scope text[], mode integer, hops integer, depth integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    all_errors constant boolean := (mode & 1) = 1;
    errs jsonb;
    r jsonb;
    sub jsonb;
    k text;
    v jsonb;
    pk text;
    cnt integer;
BEGIN
    sub := s -> 'required';
    IF sub IS NOT NULL AND NOT i ?& ARRAY(SELECT jsonb_array_elements_text(sub)) THEN
        FOR k IN SELECT e FROM jsonb_array_elements_text(sub) e WHERE NOT i ? e LOOP
            errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/required', 'required',
                format('the required property %s is missing', to_jsonb(k))));
            IF NOT all_errors THEN RETURN errs; END IF;
        END LOOP;
    END IF;
    sub := s -> 'propertyNames';
    IF sub IS NOT NULL THEN
        FOR k IN SELECT jsonb_object_keys(i) LOOP
            r := forms.schema_eval(sub, to_jsonb(k), root, idx, ipath, spath || '/propertyNames',
                                   loc || '/propertyNames', scope, mode, 0, depth + 1);
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
            errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/minProperties', 'minProperties',
                format('the object has %s properties, fewer than the minimum of %s', cnt, sub)));
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
        sub := s -> 'maxProperties';
        IF sub IS NOT NULL AND cnt > sub::numeric THEN
            errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/maxProperties', 'maxProperties',
                format('the object has %s properties, more than the maximum of %s', cnt, sub)));
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
    END IF;
    sub := s -> 'dependentRequired';
    IF sub IS NOT NULL THEN
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(sub) e WHERE i ? e.key LOOP
            FOR pk IN SELECT d FROM jsonb_array_elements_text(v) d WHERE NOT i ? d LOOP
                errs := coalesce(errs, '[]') || (forms.schema_error(ipath,
                    spath || '/dependentRequired/' || forms.pointer_token(k), 'dependentRequired',
                    format('the property %s is required when %s is present', to_jsonb(pk), to_jsonb(k))));
                IF NOT all_errors THEN RETURN errs; END IF;
            END LOOP;
        END LOOP;
    END IF;
    sub := s -> 'dependentSchemas';
    IF sub IS NOT NULL THEN
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(sub) e WHERE i ? e.key LOOP
            r := forms.schema_eval(v, i, root, idx, ipath, spath || '/dependentSchemas/' || forms.pointer_token(k),
                                   loc || '/dependentSchemas/' || forms.pointer_token(k), scope, mode, hops, depth + 1);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END LOOP;
    END IF;
    RETURN errs;
END;
$$;

-- "minItems", "maxItems", "uniqueItems", "prefixItems", "items", "contains",
-- "minContains", "maxContains".
CREATE FUNCTION forms.schema_eval_array(s jsonb, i jsonb, root jsonb, idx jsonb, ipath text, spath text,
                                        loc text, scope text[], mode integer, depth integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    all_errors constant boolean := (mode & 1) = 1;
    len constant integer := jsonb_array_length(i);
    errs jsonb;
    r jsonb;
    sub jsonb;
    n numeric;
    lim numeric;
    cnt integer;
    k integer;
    lo integer := 0;
    target jsonb;
    path text;
    lscope text[];
    hop integer;
BEGIN
    sub := s -> 'minItems';
    IF sub IS NOT NULL AND len < sub::numeric THEN
        errs := forms.schema_error(ipath, spath || '/minItems', 'minItems',
            format('the array has %s items, fewer than the minimum of %s', len, sub));
        IF NOT all_errors THEN RETURN errs; END IF;
    END IF;
    sub := s -> 'maxItems';
    IF sub IS NOT NULL AND len > sub::numeric THEN
        errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/maxItems', 'maxItems',
            format('the array has %s items, more than the maximum of %s', len, sub)));
        IF NOT all_errors THEN RETURN errs; END IF;
    END IF;
    IF s -> 'uniqueItems' = 'true' AND len > 1 AND NOT forms.jsonb_array_unique(i) THEN
        errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/uniqueItems', 'uniqueItems',
            'the array has duplicate items'));
        IF NOT all_errors THEN RETURN errs; END IF;
    END IF;
    sub := s -> 'prefixItems';
    IF sub IS NOT NULL THEN
        lo := least(jsonb_array_length(sub), len);
        FOR k IN 0 .. lo - 1 LOOP
            r := forms.schema_eval(sub -> k, i -> k, root, idx, ipath || '/' || k, spath || '/prefixItems/' || k,
                                   loc || '/prefixItems/' || k, scope, mode, 0, depth + 1);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END LOOP;
    END IF;
    sub := s -> 'items';
    IF sub IS NOT NULL AND sub <> 'true' AND len > lo THEN
        -- An item schema that is only a "$ref" is resolved once, not per item (and one
        -- call less per level of a recursive schema): its target is evaluated directly,
        -- one level deeper, as the yes/no evaluator does.
        target := jsonb_build_object('schema', sub, 'loc', loc || '/items');
        path := spath || '/items';
        lscope := scope;
        hop := 0;
        WHILE jsonb_typeof(target -> 'schema') = 'object' AND (target -> 'schema') ? '$ref'
              AND (target -> 'schema') - '$ref' = '{}' LOOP
            target := forms.schema_target(target -> 'schema', root, idx, path, target ->> 'loc', lscope, '$ref', hop);
            lscope := forms.scope_enter(lscope, target ->> 'owner');
            path := path || '/$ref';
            hop := hop + 1;
        END LOOP;
        FOR k IN lo .. len - 1 LOOP
            r := forms.schema_eval(target -> 'schema', i -> k, root, idx, ipath || '/' || k, path,
                                   target ->> 'loc', lscope, mode, 0, depth + 1 + hop);
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
        FOR k IN 0 .. len - 1 LOOP
            IF forms.schema_passes(sub, i -> k, root, idx, loc || '/contains', scope, mode, 0, depth + 1) THEN
                cnt := cnt + 1;
                EXIT WHEN n IS NULL AND cnt >= lim;
                EXIT WHEN cnt > n;
            END IF;
        END LOOP;
        IF cnt < lim THEN
            errs := coalesce(errs, '[]') || (forms.schema_error(ipath,
                spath || CASE WHEN s ? 'minContains' THEN '/minContains' ELSE '/contains' END,
                CASE WHEN s ? 'minContains' THEN 'minContains' ELSE 'contains' END,
                format('the array has %s items matching "contains", fewer than %s', cnt, lim)));
        ELSIF cnt > n THEN
            errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/maxContains', 'maxContains',
                format('the array has more than %s items matching "contains"', n)));
        END IF;
    END IF;
    RETURN errs;
END;
$$;

-- The schema a "$ref" or "$dynamicRef" (p_keyword) of the schema s at location loc
-- points at, with its location and that of its resource (with an index): {"schema",
-- "loc", "owner"}. WF001 when it does not resolve inside the document.
CREATE FUNCTION forms.schema_target(s jsonb, root jsonb, idx jsonb, spath text, loc text, scope text[],
                                    p_keyword text, hops integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    ref constant text := s ->> p_keyword;
    target jsonb;
    found jsonb;
BEGIN
    IF hops >= 32 THEN
        RAISE EXCEPTION 'the % at % recurses without reaching a value', p_keyword, spath || '/' || p_keyword
            USING ERRCODE = 'WF001', DETAIL = jsonb_build_object('schema_path', spath || '/' || p_keyword)::text;
    END IF;
    IF idx IS NULL THEN
        -- One resource: a "$dynamicRef" has no other scope to look in, so it is a "$ref".
        found := forms.schema_resolve(root, ref);
    ELSE
        target := forms.schema_reference(root, idx, loc, scope, p_keyword, ref);
        found := root #> (target ->> 'path')::text[];
    END IF;
    IF found IS NULL THEN
        RAISE EXCEPTION 'the % % does not point into this schema (remote references are not supported)', p_keyword, to_jsonb(ref)
            USING ERRCODE = 'WF001', DETAIL = jsonb_build_object('schema_path', spath || '/' || p_keyword)::text;
    END IF;
    RETURN jsonb_build_object('schema', found, 'loc', target -> 'loc', 'owner', target -> 'owner');
END;
$$;

-- "allOf", "anyOf", "oneOf", "not", "if"/"then"/"else": the subschemas applied to the
-- same value (references are applied by forms.schema_eval itself).
CREATE FUNCTION forms.schema_eval_applicators(s jsonb, i jsonb, root jsonb, idx jsonb, ipath text, spath text,
                                              loc text, scope text[], mode integer, hops integer, depth integer)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    all_errors constant boolean := (mode & 1) = 1;
    errs jsonb;
    r jsonb;
    sub jsonb;
    k text;
    n integer;
    cnt integer;
BEGIN
    sub := s -> 'allOf';
    IF sub IS NOT NULL THEN
        FOR n IN 0 .. jsonb_array_length(sub) - 1 LOOP
            r := forms.schema_eval(sub -> n, i, root, idx, ipath, spath || '/allOf/' || n, loc || '/allOf/' || n,
                                   scope, mode, hops, depth + 1);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END LOOP;
    END IF;
    FOREACH k IN ARRAY ARRAY['anyOf', 'oneOf'] LOOP
        sub := s -> k;
        CONTINUE WHEN sub IS NULL;
        cnt := 0;
        FOR n IN 0 .. jsonb_array_length(sub) - 1 LOOP
            IF forms.schema_passes(sub -> n, i, root, idx, loc || '/' || k || '/' || n, scope, mode, hops, depth + 1) THEN
                cnt := cnt + 1;
                EXIT WHEN k = 'anyOf' OR cnt > 1;
            END IF;
        END LOOP;
        IF cnt = 0 OR (k = 'oneOf' AND cnt > 1) THEN
            errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/' || k, k,
                CASE WHEN cnt = 0 THEN format('the value matches none of the "%s" schemas', k)
                     ELSE 'the value matches more than one of the "oneOf" schemas' END));
            IF NOT all_errors THEN RETURN errs; END IF;
        END IF;
    END LOOP;
    sub := s -> 'not';
    IF sub IS NOT NULL AND forms.schema_passes(sub, i, root, idx, loc || '/not', scope, mode, hops, depth + 1) THEN
        errs := coalesce(errs, '[]') || (forms.schema_error(ipath, spath || '/not', 'not',
            'the value must not match the "not" schema'));
        IF NOT all_errors THEN RETURN errs; END IF;
    END IF;
    IF s ? 'if' THEN
        k := CASE WHEN forms.schema_passes(s -> 'if', i, root, idx, loc || '/if', scope, mode, hops, depth + 1)
                  THEN 'then' ELSE 'else' END;
        IF s ? k THEN
            r := forms.schema_eval(s -> k, i, root, idx, ipath, spath || '/' || k, loc || '/' || k, scope, mode,
                                   hops, depth + 1);
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
            END IF;
        END IF;
    END IF;
    RETURN errs;
END;
$$;

-- The dynamic scope p_scope once the resource at p_resource is entered (NULL without
-- an index).
CREATE FUNCTION forms.scope_enter(p_scope text[], p_resource text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN p_resource IS NULL OR p_scope[cardinality(p_scope)] = p_resource THEN p_scope
            ELSE p_scope || p_resource END;

-- "unevaluatedProperties" and "unevaluatedItems": the properties or items no other
-- keyword of this schema, or of a subschema applied to the same value that the value
-- passes, has evaluated (forms.schema_evaluated_properties, _items), each against the
-- subschema. p_valid: the schema's other keywords all passed, so the annotations of its
-- "allOf" branches count without checking them again.
CREATE FUNCTION forms.schema_eval_unevaluated(s jsonb, i jsonb, root jsonb, idx jsonb, ipath text, spath text,
                                              loc text, scope text[], mode integer, hops integer, depth integer,
                                              p_valid boolean)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    all_errors constant boolean := (mode & 1) = 1;
    keyword constant text := CASE jsonb_typeof(i) WHEN 'object' THEN 'unevaluatedProperties'
                                                  WHEN 'array' THEN 'unevaluatedItems' END;
    sub constant jsonb := s -> keyword;
    seen text[];
    errs jsonb;
    r jsonb;
    k text;
    v jsonb;
    token text;
BEGIN
    IF sub IS NULL THEN
        RETURN NULL;
    ELSIF keyword = 'unevaluatedProperties' THEN
        seen := forms.schema_evaluated_properties(s, i, root, idx, loc, scope, mode, hops, depth + 1, p_valid, true);
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(i) e WHERE NOT e.key = ANY (seen) LOOP
            token := '/' || forms.pointer_token(k);
            r := CASE WHEN sub = 'false'
                      THEN forms.schema_error(ipath || token, spath || '/unevaluatedProperties', 'unevaluatedProperties',
                               format('the property %s is not allowed (no subschema evaluates it)', to_jsonb(k)))
                      ELSE forms.schema_eval(sub, v, root, idx, ipath || token, spath || '/unevaluatedProperties',
                                             loc || '/unevaluatedProperties', scope, mode, 0, depth + 1) END;
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END LOOP;
    ELSE
        seen := forms.schema_evaluated_items(s, i, root, idx, loc, scope, mode, hops, depth + 1, p_valid, true);
        FOR k, v IN SELECT (e.n - 1)::text, e.value FROM jsonb_array_elements(i) WITH ORDINALITY e(value, n)
                    WHERE NOT (e.n - 1)::text = ANY (seen) LOOP
            r := CASE WHEN sub = 'false'
                      THEN forms.schema_error(ipath || '/' || k, spath || '/unevaluatedItems', 'unevaluatedItems',
                               format('item %s is not allowed (no subschema evaluates it)', k))
                      ELSE forms.schema_eval(sub, v, root, idx, ipath || '/' || k, spath || '/unevaluatedItems',
                                             loc || '/unevaluatedItems', scope, mode, 0, depth + 1) END;
            IF r IS NOT NULL THEN
                errs := coalesce(errs, '[]') || r;
                IF NOT all_errors THEN RETURN errs; END IF;
            END IF;
        END LOOP;
    END IF;
    RETURN errs;
END;
$$;

-- The names of the properties of the object i that the schema s evaluates: its own
-- "properties", "patternProperties", "additionalProperties" and unevaluatedProperties
-- (except on the schema asking, p_top), and those of the subschemas it applies to i
-- that i passes: "$ref", "$dynamicRef", "allOf", the passing "anyOf" and "oneOf"
-- branches, "if" when it passes with "then", else "else", "dependentSchemas". Not "not".
-- p_valid: i is known to pass s.
CREATE FUNCTION forms.schema_evaluated_properties(s jsonb, i jsonb, root jsonb, idx jsonb, loc text, scope text[],
                                                  mode integer, hops integer, depth integer, p_valid boolean,
                                                  p_top boolean)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    seen text[] := '{}';
    t jsonb;
    k text;
    n integer;
    sub jsonb;
BEGIN
    IF jsonb_typeof(s) <> 'object' THEN
        RETURN seen;
    ELSIF depth >= 160 THEN
        PERFORM forms.nesting_refuse('evaluation');
    ELSIF s ? 'additionalProperties' OR (NOT p_top AND s ? 'unevaluatedProperties') THEN
        RETURN ARRAY(SELECT jsonb_object_keys(i));
    END IF;
    IF idx IS NOT NULL AND s ? '$id' THEN
        scope := forms.scope_enter(scope, loc);
    END IF;
    IF s ? 'properties' THEN
        seen := ARRAY(SELECT e.key FROM jsonb_object_keys(i) e(key) WHERE s -> 'properties' ? e.key);
    END IF;
    IF s ? 'patternProperties' THEN
        seen := seen || ARRAY(SELECT e.key FROM jsonb_object_keys(i) e(key)
                              WHERE EXISTS (SELECT FROM jsonb_object_keys(s -> 'patternProperties') p(pattern)
                                            WHERE forms.pattern_test(e.key, p.pattern)));
    END IF;
    IF NOT s ?| '{$ref,$dynamicRef,allOf,anyOf,oneOf,if,dependentSchemas}'::text[] THEN
        RETURN seen;
    END IF;
    FOREACH k IN ARRAY ARRAY['$ref', '$dynamicRef'] LOOP
        CONTINUE WHEN NOT s ? k;
        t := forms.schema_target(s, root, idx, '', loc, scope, k, hops);
        seen := seen || forms.schema_evaluated_properties(t -> 'schema', i, root, idx, t ->> 'loc',
            forms.scope_enter(scope, t ->> 'owner'), mode, hops + 1, depth + 1, p_valid, false);
    END LOOP;
    FOREACH k IN ARRAY ARRAY['allOf', 'anyOf', 'oneOf'] LOOP
        sub := s -> k;
        CONTINUE WHEN sub IS NULL;
        FOR n IN 0 .. jsonb_array_length(sub) - 1 LOOP
            IF (k = 'allOf' AND p_valid)
               OR forms.schema_passes(sub -> n, i, root, idx, loc || '/' || k || '/' || n, scope, mode, hops, depth + 1) THEN
                seen := seen || forms.schema_evaluated_properties(sub -> n, i, root, idx, loc || '/' || k || '/' || n,
                                                                  scope, mode, hops, depth + 1, true, false);
            END IF;
        END LOOP;
    END LOOP;
    IF s ? 'if' THEN
        IF forms.schema_passes(s -> 'if', i, root, idx, loc || '/if', scope, mode, hops, depth + 1) THEN
            seen := seen || forms.schema_evaluated_properties(s -> 'if', i, root, idx, loc || '/if', scope,
                                                              mode, hops, depth + 1, true, false);
            k := 'then';
        ELSE
            k := 'else';
        END IF;
        IF s ? k THEN
            seen := seen || forms.schema_evaluated_properties(s -> k, i, root, idx, loc || '/' || k, scope,
                                                              mode, hops, depth + 1, p_valid, false);
        END IF;
    END IF;
    IF s ? 'dependentSchemas' THEN
        FOR k, sub IN SELECT e.key, e.value FROM jsonb_each(s -> 'dependentSchemas') e WHERE i ? e.key LOOP
            seen := seen || forms.schema_evaluated_properties(sub, i, root, idx,
                loc || '/dependentSchemas/' || forms.pointer_token(k), scope, mode, hops, depth + 1, p_valid, false);
        END LOOP;
    END IF;
    RETURN seen;
END;
$$;

-- The indexes (as text) of the items of the array i that the schema s evaluates: its
-- own "prefixItems", "items", "contains" (the items it matches) and unevaluatedItems
-- (except on the schema asking, p_top), and those of the subschemas it applies to i
-- that i passes, as for properties above.
CREATE FUNCTION forms.schema_evaluated_items(s jsonb, i jsonb, root jsonb, idx jsonb, loc text, scope text[],
                                             mode integer, hops integer, depth integer, p_valid boolean,
                                             p_top boolean)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    len constant integer := jsonb_array_length(i);
    seen text[] := '{}';
    t jsonb;
    k text;
    n integer;
    sub jsonb;
BEGIN
    IF jsonb_typeof(s) <> 'object' THEN
        RETURN seen;
    ELSIF depth >= 160 THEN
        PERFORM forms.nesting_refuse('evaluation');
    ELSIF s ? 'items' OR (NOT p_top AND s ? 'unevaluatedItems') THEN
        RETURN ARRAY(SELECT generate_series(0, len - 1)::text);
    END IF;
    IF idx IS NOT NULL AND s ? '$id' THEN
        scope := forms.scope_enter(scope, loc);
    END IF;
    IF s ? 'prefixItems' THEN
        seen := ARRAY(SELECT generate_series(0, least(jsonb_array_length(s -> 'prefixItems'), len) - 1)::text);
    END IF;
    IF s ? 'contains' THEN
        FOR n IN 0 .. len - 1 LOOP
            IF forms.schema_passes(s -> 'contains', i -> n, root, idx, loc || '/contains', scope, mode, 0, depth + 1) THEN
                seen := seen || n::text;
            END IF;
        END LOOP;
    END IF;
    IF NOT s ?| '{$ref,$dynamicRef,allOf,anyOf,oneOf,if}'::text[] THEN
        RETURN seen;
    END IF;
    FOREACH k IN ARRAY ARRAY['$ref', '$dynamicRef'] LOOP
        CONTINUE WHEN NOT s ? k;
        t := forms.schema_target(s, root, idx, '', loc, scope, k, hops);
        seen := seen || forms.schema_evaluated_items(t -> 'schema', i, root, idx, t ->> 'loc',
            forms.scope_enter(scope, t ->> 'owner'), mode, hops + 1, depth + 1, p_valid, false);
    END LOOP;
    FOREACH k IN ARRAY ARRAY['allOf', 'anyOf', 'oneOf'] LOOP
        sub := s -> k;
        CONTINUE WHEN sub IS NULL;
        FOR n IN 0 .. jsonb_array_length(sub) - 1 LOOP
            IF (k = 'allOf' AND p_valid)
               OR forms.schema_passes(sub -> n, i, root, idx, loc || '/' || k || '/' || n, scope, mode, hops, depth + 1) THEN
                seen := seen || forms.schema_evaluated_items(sub -> n, i, root, idx, loc || '/' || k || '/' || n,
                                                             scope, mode, hops, depth + 1, true, false);
            END IF;
        END LOOP;
    END LOOP;
    IF s ? 'if' THEN
        IF forms.schema_passes(s -> 'if', i, root, idx, loc || '/if', scope, mode, hops, depth + 1) THEN
            seen := seen || forms.schema_evaluated_items(s -> 'if', i, root, idx, loc || '/if', scope,
                                                         mode, hops, depth + 1, true, false);
            k := 'then';
        ELSE
            k := 'else';
        END IF;
        IF s ? k THEN
            seen := seen || forms.schema_evaluated_items(s -> k, i, root, idx, loc || '/' || k, scope,
                                                         mode, hops, depth + 1, p_valid, false);
        END IF;
    END IF;
    RETURN seen;
END;
$$;

-- The yes/no evaluator, forms.schema_ok_0 .. _12 (see the top of this file): one body,
-- made once per nesting level, each level calling the next and the last calling
-- forms.schema_ok_deep. Called with the schema, the value, the whole schema document,
-- mode (2: formats are asserted; from bit 8 up: the evaluation's depth when it started
-- below the top) and the references followed since the value last changed (hops).
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
                    AND (s -> 'pattern' IS NULL OR forms.pattern_test(i #>> '{}', s ->> 'pattern'))
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
                        IF forms.pattern_test(k, pk) THEN
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
                -- An item schema that is only a "$ref" is resolved once, not per item; the
                -- references followed count in the evaluation's depth (mode >> 8).
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
                    IF NOT coalesce(matched, @next@(sub, v, root, mode + (cnt << 8), 0)) THEN
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
    IF s ?| '{$ref,allOf,anyOf,oneOf,not,if,$dynamicRef,unevaluatedProperties,unevaluatedItems}'::text[] THEN
        IF s ?| '{$dynamicRef,unevaluatedProperties,unevaluatedItems}'::text[] THEN
            -- Annotations or a dynamic reference: the complete evaluator decides this
            -- schema (the document is one resource, so it needs no index).
            RETURN forms.schema_eval(s, i, root, NULL, '', '', NULL, NULL, mode & 2, hops, (mode >> 8) + @level@) IS NULL;
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
         OR @S@ ?| '{$ref,allOf,anyOf,oneOf,not,if,$dynamicRef,unevaluatedProperties,unevaluatedItems}'::text[]
        THEN NULL
    ELSE (@S@ -> 'type' IS NULL OR @S@ -> 'type' ? jsonb_typeof(@V@)
          OR (jsonb_typeof(@V@) = 'number' AND @S@ -> 'type' ? 'integer' AND (@V@)::numeric = trunc((@V@)::numeric)))
         AND (@S@ -> 'const' IS NULL OR @S@ -> 'const' = @V@)
         AND (@S@ -> 'enum' IS NULL OR @S@ -> 'enum' @> jsonb_build_array(@V@))
         AND CASE jsonb_typeof(@V@)
             WHEN 'string' THEN
                 (@S@ -> 'minLength' IS NULL OR length(@V@ #>> '{}') >= (@S@ -> 'minLength')::numeric)
                 AND (@S@ -> 'maxLength' IS NULL OR length(@V@ #>> '{}') <= (@S@ -> 'maxLength')::numeric)
                 AND (@S@ -> 'pattern' IS NULL OR forms.pattern_test(@V@ #>> '{}', @S@ ->> 'pattern'))
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
            AS %L$f$, level, replace(replace(replace(replace(replace(body,
                '@leaf(sub, v)@', replace(replace(leaf, '@S@', 'sub'), '@V@', 'v')),
                '@leaf(v, i)@', replace(replace(leaf, '@S@', 'v'), '@V@', 'i')),
                '@leaf(sub, i)@', replace(replace(leaf, '@S@', 'sub'), '@V@', 'i')),
                '@next@', CASE WHEN level < levels THEN 'forms.schema_ok_' || (level + 1) ELSE 'forms.schema_ok_deep' END),
                '@level@', level::text));
    END LOOP;
END;
$do$;

-- Whether the value passes the schema, for "anyOf", "oneOf", "not", "if", "contains"
-- and the annotations of unevaluated*: the yes/no evaluator when the document is one
-- resource, the complete one, stopping at the first error, when it has an index.
CREATE FUNCTION forms.schema_passes(s jsonb, i jsonb, root jsonb, idx jsonb, loc text, scope text[],
                                    mode integer, hops integer, depth integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN idx IS NULL THEN forms.schema_ok_0(s, i, root, (mode & 2) | (depth << 8), hops)
            ELSE forms.schema_eval(s, i, root, idx, '', '', loc, scope, mode & 2, hops, depth) IS NULL END;

-- Level 13 and deeper of the yes/no evaluator: schema_ok_12 calls this, which counts
-- the levels in mode's bits from 8 up and refuses an evaluation nested deeper than
-- forms.nesting_refuse allows.
CREATE FUNCTION forms.schema_ok_deep(s jsonb, i jsonb, root jsonb, mode integer, hops integer)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    IF (mode >> 8) + 13 >= 160 THEN
        RETURN forms.nesting_refuse('evaluation');
    END IF;
    RETURN forms.schema_ok_12(s, i, root, mode + 256, hops);
END;
$$;

-- Validation entry points. "#> '{}'" hands the evaluators plain (decompressed) values:
-- a compressed value read from a table would otherwise be decompressed at every access.
-- Both refuse a schema or an instance nested too deep (WF006) before evaluating.

-- Whether the instance is valid: the yes/no evaluator, which stops at the first
-- failure, or for a document with resources the complete evaluator with its index.
CREATE FUNCTION forms.json_schema_valid(schema jsonb, instance jsonb, assert_formats boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    s constant jsonb := schema #> '{}';
    i constant jsonb := instance #> '{}';
BEGIN
    IF NOT forms.nesting_ok(s) THEN
        RETURN forms.nesting_refuse('schema');
    ELSIF NOT forms.nesting_ok(i) THEN
        RETURN forms.nesting_refuse('instance');
    ELSIF forms.schema_has_resources(s) THEN
        RETURN forms.schema_eval(s, i, s, forms.schema_index(s), '', '', '', '{""}',
                                 CASE WHEN assert_formats THEN 2 ELSE 0 END, 0, 0) IS NULL;
    END IF;
    RETURN forms.schema_ok_0(s, i, s, CASE WHEN assert_formats THEN 2 ELSE 0 END, 0);
END;
$$;

-- Every error of the instance, [] when it is valid.
CREATE FUNCTION forms.json_schema_errors(schema jsonb, instance jsonb, assert_formats boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    s constant jsonb := schema #> '{}';
    i constant jsonb := instance #> '{}';
    idx jsonb;
BEGIN
    IF NOT forms.nesting_ok(s) THEN
        PERFORM forms.nesting_refuse('schema');
    ELSIF NOT forms.nesting_ok(i) THEN
        PERFORM forms.nesting_refuse('instance');
    ELSIF forms.schema_has_resources(s) THEN
        idx := forms.schema_index(s);
    END IF;
    RETURN coalesce(forms.schema_eval(s, i, s, idx, '', '', CASE WHEN idx IS NOT NULL THEN '' END, '{""}',
                                      CASE WHEN assert_formats THEN 3 ELSE 1 END, 0, 0), '[]');
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

-- A dotted-quad IPv4 address: four decimal octets from 0 to 255, without leading zeros.
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
-- every "$ref" and "$dynamicRef" resolving to a schema inside the document (p_idx is
-- its index, forms.schema_index), every regex valid. Walks the subschemas the way the
-- index does, so that p_path is the location the index knows.
CREATE FUNCTION forms.schema_check_node(s jsonb, p_root jsonb, p_idx jsonb, p_path text, p_depth integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE
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
                PERFORM forms.schema_check_node(ev, p_root, p_idx, p || '/' || forms.pointer_token(ek), p_depth + 1);
            END LOOP;
        WHEN k IN ('additionalProperties', 'propertyNames', 'items', 'contains', 'not', 'if', 'then', 'else',
                   'unevaluatedItems', 'unevaluatedProperties', 'contentSchema') THEN
            PERFORM forms.schema_check_node(v, p_root, p_idx, p, p_depth + 1);
        WHEN k IN ('prefixItems', 'allOf', 'anyOf', 'oneOf') THEN
            IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
                PERFORM forms.schema_refuse(p, format('%s is a non-empty array of schemas', k));
            END IF;
            FOR ev, ek IN SELECT e.value, (e.n - 1)::text FROM jsonb_array_elements(v) WITH ORDINALITY e(value, n) LOOP
                PERFORM forms.schema_check_node(ev, p_root, p_idx, p || '/' || ek, p_depth + 1);
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
            IF jsonb_typeof(v) <> 'string' OR v #>> '{}' ~ '#.' THEN
                PERFORM forms.schema_refuse(p, '$id is a URI reference without a fragment');
            END IF;
        WHEN k IN ('$anchor', '$dynamicAnchor') THEN
            IF jsonb_typeof(v) <> 'string' OR v #>> '{}' !~ '^[A-Za-z_][-A-Za-z0-9._]*$' THEN
                PERFORM forms.schema_refuse(p, format('%s is a name: a letter or "_", then letters, digits, "-", "_" and "."', k));
            END IF;
        WHEN k IN ('$ref', '$dynamicRef') THEN
            IF jsonb_typeof(v) <> 'string' THEN
                PERFORM forms.schema_refuse(p, format('%s is a string', k));
            END IF;
            target := p_root #> (p_idx #>> ARRAY[k, p_path, 'path'])::text[];
            IF target IS NULL THEN
                PERFORM forms.schema_refuse(p, format('%s %s does not point into this schema (remote references are not supported)', k, v));
            ELSIF jsonb_typeof(target) NOT IN ('object', 'boolean') THEN
                PERFORM forms.schema_refuse(p, format('%s %s points at a value that is not a schema', k, v));
            END IF;
        WHEN k LIKE 'x-%' THEN
            NULL;
        ELSE
            PERFORM forms.schema_refuse(p, format('unsupported keyword %s', to_jsonb(k)));
        END CASE;
    END LOOP;
END;
$$;

-- Refuses a pattern PostgreSQL cannot compile, or whose Unicode property escapes
-- cannot be translated (forms.pattern_translate).
CREATE FUNCTION forms.schema_check_regex(p_pattern text, p_path text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE
AS $$
BEGIN
    PERFORM forms.pattern_test('', p_pattern);
EXCEPTION
    WHEN invalid_regular_expression THEN
        PERFORM forms.schema_refuse(p_path, format('invalid regular expression %s: %s', to_jsonb(p_pattern), SQLERRM));
    WHEN undefined_object THEN
        PERFORM forms.schema_refuse(p_path, format('the pattern %s uses Unicode property escapes, which need PostgreSQL built with ICU', to_jsonb(p_pattern)));
END;
$$;

-- True for an array of distinct strings.
CREATE FUNCTION forms.is_name_list(p_value jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_typeof(p_value) = 'array'
   AND NOT jsonb_path_exists(p_value, 'strict $[*] ? (@.type() != "string")')
   AND forms.jsonb_array_unique(p_value);

-- Checks a form's JSON Schema when it is saved: its nesting (WF006), then every
-- subschema (see schema_check_node), then evaluates it once on each kind of value so
-- that references looping without reaching a value are found now. PARALLEL UNSAFE, like
-- every function with an EXCEPTION block: a subtransaction cannot start in a parallel
-- query.
CREATE FUNCTION forms.schema_check(p_schema jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE
AS $$
DECLARE
    probe jsonb;
BEGIN
    IF p_schema IS NULL THEN
        PERFORM forms.schema_refuse('', 'a form definition has a "schema"');
    ELSIF NOT forms.nesting_ok(p_schema) THEN
        PERFORM forms.nesting_refuse('schema');
    END IF;
    PERFORM forms.schema_check_node(p_schema, p_schema, forms.schema_index(p_schema), '', 0);
    FOREACH probe IN ARRAY ARRAY['null', 'true', '0', '""', '[]', '{}']::jsonb[] LOOP
        PERFORM forms.json_schema_valid(p_schema, probe);
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
