"""Training stage: DyMeshVAE, the rectified-flow MM-DiT, their training loop (Ray Train / torchrun) and `animate`.

Modules: configs (tiny / paper sizes and job specs), adjacency (sparse 1-ring neighbour lists), fps_sampling
(farthest-point token sampling), vae, text_encoder, flow, checkpoint (local or object storage), loop (the one
training function), pca_baseline (the honest baseline), animate (morph-target GLB writer), loader (shards; owned
by the shard stage). Nothing heavy is imported here.
"""
