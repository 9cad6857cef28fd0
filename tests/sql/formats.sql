-- formats: one digit in every image format gives the same answer (JPEG: close).
-- (model 1 is a neighbour model: its confidence is minus a sum of feature distances
-- measured in held-out normal images' spreads, so a colour image's conversion to gray,
-- a unit in the last place of a pixel, shows as about 1e-4, and JPEG's loss as about
-- 0.1 of a spread)
SELECT img AS ref FROM fmt WHERE name = 'png_gray8.png' \gset
SELECT name,
	   CASE WHEN name LIKE 'jpeg%' THEN abs(clad_confidence(1, img) - clad_confidence(1, :'ref'::bytea)) < 0.5
			ELSE abs(clad_confidence(1, img) - clad_confidence(1, :'ref'::bytea)) < 1e-3 END AS same_confidence,
	   CASE WHEN name LIKE 'jpeg%' THEN true
			ELSE clad_cluster(1, img) = clad_cluster(1, :'ref'::bytea) END AS same_cluster,
	   (SELECT max(abs(a - b)) FROM unnest(clad_embed(1, img), clad_embed(1, :'ref'::bytea)) u(a, b))
		   < CASE WHEN name LIKE 'jpeg%' THEN 0.5 ELSE 1e-4 END AS same_embedding
FROM fmt ORDER BY name;

-- a 3-channel model takes gray images (replicated) and colour ones as they are;
-- resizing: the 56x56 digit (every pixel doubled) is the 28x28 digit again
SELECT clad_embed(1, (SELECT img FROM fmt WHERE name = 'png_56x56.png')) =
	   clad_embed(1, :'ref'::bytea) AS resize_exact;

-- a larger limit than the image is fine, a smaller one refuses it
SET clad.max_image_pixels = 784;
SELECT clad_score(1, :'ref'::bytea) IS NOT NULL AS ok_at_limit;
SELECT err($$SELECT clad_score(1, img) FROM fmt WHERE name = 'png_56x56.png'$$);
SELECT err($$SELECT clad_score(1, array_fill(0.5::real, ARRAY[29, 28]))$$);
RESET clad.max_image_pixels;
