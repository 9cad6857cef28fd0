-- lifecycle: versions, activation, info, drop, prune, immutability.
SELECT version, active, architecture, input_shape, clusters, length(sha256) AS sha_hex
FROM clad_model_info('digits');

-- activating version 2 changes what the name means, from the next statement on
SELECT img AS img3 FROM fmt WHERE name = 'png_gray8.png' \gset
SELECT clad_confidence('digits', :'img3'::bytea) = clad_confidence(1, :'img3'::bytea) AS uses_v1;
SELECT clad_activate('digits', 2);
SELECT clad_confidence('digits', :'img3'::bytea) = clad_confidence(2, :'img3'::bytea) AS uses_v2,
	   array_length(clad_cluster_probs('digits', :'img3'::bytea), 1) AS k;
SELECT name, active_version FROM clad.model_list ORDER BY name;
SELECT err($$SELECT clad_activate('digits', 3)$$);
SELECT err($$SELECT clad_activate('nope', 1)$$);
SELECT clad_activate('digits', 1);

-- a version loaded with activate => true becomes active at once
SELECT clad_load_model('digits', fixture('model2.safetensors'), activate => true) AS v4;
SELECT active_version FROM clad.model_list WHERE name = 'digits';
SELECT clad_activate('digits', 1);

-- versions never change; the bytes are checked whoever inserts them
SELECT err($$UPDATE clad.model_versions SET metrics = '{}' WHERE id = 1$$);
SELECT err($$INSERT INTO clad.model_versions (name, model, autoencoder, classifier, input_shape, clusters, size_bytes, sha256)
			VALUES ('digits', '\x00', '', '', '{}', 0, 0, '')$$);

-- drop one version; the active one cannot be dropped; prune keeps the newest
SELECT err($$SELECT clad_drop_model('digits', 1)$$);
SELECT clad_drop_model('digits', 4);
SELECT err($$SELECT clad_drop_model('digits', 4)$$);
SELECT clad_load_model('digits', fixture('model2.safetensors')) AS v5;
SELECT clad_load_model('digits', fixture('model2.safetensors')) AS v6;
SELECT clad_prune_versions('digits', 1) AS pruned;
SELECT version, active FROM clad_model_info('digits');
SELECT err($$SELECT clad_prune_versions('digits', -1)$$);

-- a model whose first version is loaded inactive has no active version
SELECT clad_load_model('idle', fixture('model1.safetensors'), activate => false) AS v7;
SELECT err($$SELECT clad_score('idle', img) FROM fmt LIMIT 1$$);
SELECT clad_drop_model('idle');
SELECT err($$SELECT clad_model_info('idle')$$);
SELECT count(*) AS idle_versions FROM clad.model_versions WHERE name = 'idle';

-- a dropped version is gone for the id form too
SELECT err($$SELECT clad_score(8, img) FROM fmt LIMIT 1$$);

-- clad_model_describe: a file's settings, without storing it
SELECT d->'input_shape' AS input_shape, d->'clusters' AS k, d->'latent' AS latent,
	   d->>'autoencoder' AS ae, d->>'classifier' AS clf, d->'odin_temperature' AS t,
	   (d->>'calibration_images')::int > 0 AS calibrated, jsonb_typeof(d->'summary') AS summary
FROM (SELECT clad_model_describe(fixture('model1.safetensors')) d) q;
