"""Run in a fresh process by test_distributed.py (the CPU must be split before TensorFlow starts).

    python -m tests.distributed_check mirrored OUT.json      (from the repository root)

Trains a small FaceNet two steps under MirroredStrategy over two logical CPUs, and the same
steps on one device by hand (each replica's share forwarded on its own, gradients averaged),
from the same weights and batches; writes both paths' losses and the largest difference of the
weights after the first update. (Beyond one update this network amplifies rounding noise: Keras
`fit` on one device and the hand-made loop drift apart by about 1% after two updates of the
early depthwise kernels, with or without a strategy, so weights are compared after one.)
"""
import json
import sys

ALPHA = 2.5
LR = 1e-4


def mirrored(out_path, steps=2, batch=12, size=32, classes=5):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    import numpy as np

    from facenet.training.distribute import pick_strategy
    from nets.facenet import facenet
    from nets.losses import triplet_loss

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 1, (steps, batch, size, size, 3)).astype(np.float32)
    ys = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, (steps, batch))]

    def build():
        return facenet((size, size, 3), num_classes=classes, backbone="mobilenet", mode="train",
                       dropout_keep_prob=1.0)  # no dropout: both paths see the same network

    reference = build()
    start = reference.get_weights()
    start_trainable = [v.numpy() for v in reference.trainable_variables]
    # alpha 2.5 > any distance between unit vectors: every triplet stays active, so the loss is
    # smooth and float noise between the two paths cannot flip a triplet in or out
    loss_fn, ce = triplet_loss(ALPHA), keras.losses.CategoricalCrossentropy()
    opt = keras.optimizers.SGD(LR)
    ref_losses, ref_after_1 = [], None
    replicas = 2
    for s in range(steps):
        grads_sum, loss_sum = None, 0.0
        for r in range(replicas):  # what each replica does with its share
            part = slice(r * batch // replicas, (r + 1) * batch // replicas)
            with tf.GradientTape() as tape:
                soft, emb = reference(xs[s][part], training=True)
                loss = ce(ys[s][part], soft) + tf.reduce_mean(loss_fn(ys[s][part], emb))
            grads = tape.gradient(loss, reference.trainable_variables)
            grads_sum = grads if grads_sum is None else [a + b for a, b in zip(grads_sum, grads)]
            loss_sum += float(loss)
        opt.apply_gradients(zip([g / replicas for g in grads_sum],
                                reference.trainable_variables))
        ref_losses.append(loss_sum / replicas)
        if s == 0:
            ref_after_1 = [v.numpy() for v in reference.trainable_variables]

    strategy = pick_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    with strategy.scope():
        model = build()
        model.set_weights(start)
        model.compile(optimizer=keras.optimizers.SGD(LR),
                      loss={"Softmax": "categorical_crossentropy", "Embedding": triplet_loss(ALPHA)})
    losses, after_1 = [], []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # one step per epoch: the step's own loss
            losses.append(float(logs["loss"]))
            if epoch == 0:
                after_1.extend(v.numpy() for v in self.model.trainable_variables)

    data = tf.data.Dataset.from_tensor_slices((xs, (ys, ys)))
    model.fit(data, epochs=steps, steps_per_epoch=1, verbose=0, callbacks=[Record()],
              shuffle=False)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(after_1, ref_after_1))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(ref_after_1, start_trainable))
    with open(out_path, "w") as f:
        json.dump({"mirrored_losses": losses, "single_losses": ref_losses,
                   "max_weight_difference": diff, "max_weight_change": moved}, f)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored(sys.argv[2])
