-- errors: every bad input is an ERROR with its own SQLSTATE and a clear message.
SELECT img AS img3 FROM fmt WHERE name = 'png_gray8.png' \gset

-- models
RESET clad.model;
SELECT err($$SELECT clad_score('\x00'::bytea)$$);
SET clad.model = 'nope';
SELECT err($$SELECT clad_score('\x00'::bytea)$$);
RESET clad.model;
SELECT err($$SELECT clad_score('nope', '\x00'::bytea)$$);
SELECT err($$SELECT clad_score(repeat('x', 100), '\x00'::bytea)$$);
SELECT err($$SELECT clad_score(999, '\x00'::bytea)$$);
SELECT err($$SELECT clad_load_model('bad name!', '\x00')$$);
SELECT err($$SELECT clad_load_model('x', NULL)$$);
SELECT err($$SELECT clad_load_model('x', '\x00')$$);
SELECT err($$SELECT clad_load_model('x', '\x0800000000000000')$$);
-- (the header's length varies with the digits of the settings it holds)
SELECT regexp_replace(err($$SELECT clad_load_model('x', substr(fixture('model1.safetensors'), 1, 5000))$$),
					  'length \d+ beyond', 'length N beyond') AS err;
SELECT err($$SELECT clad_model_describe('\xffffffffffffffff7b7d')$$);
SELECT count(*) AS no_model_x FROM clad.models WHERE name = 'x';

-- a stored version that does not load (written behind the validating trigger's back)
-- is an ERROR, never a cache entry
ALTER TABLE clad.model_versions DISABLE TRIGGER version_before_insert;
INSERT INTO clad.model_versions (id, name, model, autoencoder, classifier, input_shape, clusters, size_bytes, sha256)
VALUES (100, 'digits', '\x00', 'cvae', 'cnn', '{1,28,28}', 4, 1, sha256('\x00'));
ALTER TABLE clad.model_versions ENABLE TRIGGER version_before_insert;
SELECT clad_cache_loads() AS loads_before \gset
SELECT err(format('SELECT clad_score(100, %L::bytea)', :'img3'));
SELECT err(format('SELECT clad_score(100, %L::bytea)', :'img3'));
SELECT count(*) AS cached_100 FROM clad_cache() WHERE version = 100;
SELECT clad_cache_loads() = :loads_before AS nothing_loaded;
DELETE FROM clad.model_versions WHERE id = 100;

-- images
SELECT name, err(format('SELECT clad_score(1, %L::bytea)', img)) FROM bad ORDER BY name;
SELECT err($$SELECT clad_score(1, ''::bytea)$$);
SELECT err($$SELECT clad_score(1, '\x0102'::bytea)$$);
SELECT err($$SELECT clad_score(1, ARRAY[0.5]::real[])$$);
SELECT err($$SELECT clad_score(1, array_fill(0.5::real, ARRAY[1, 1, 28, 28]))$$);
SELECT err($$SELECT clad_score(1, array_fill(0.5::real, ARRAY[5, 28, 28]))$$);
SELECT err($$SELECT clad_score(1, array_fill('NaN'::real, ARRAY[28, 28]))$$);
SELECT err($$SELECT clad_score(1, array_fill(1.5::real, ARRAY[28, 28]))$$);
SELECT err($$SELECT clad_score(1, array_fill(-0.1::real, ARRAY[784]))$$);
SELECT err($$SELECT clad_score(1, ARRAY[0.5, NULL]::real[])$$);
SELECT err($$SELECT clad_score(1, '{}'::real[])$$);
SELECT err($$SELECT clad_score(1, ARRAY[ARRAY['\x00'::bytea]])$$);
SELECT err(format('SELECT clad_score(1, ARRAY[%L::bytea, ''\x00''::bytea])', :'img3'));

-- the session is fine after all of that
SELECT clad_score(1, :'img3'::bytea) BETWEEN 0 AND 1 AS still_scoring;
