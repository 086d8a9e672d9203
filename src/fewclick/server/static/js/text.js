// Words more than one page uses.

// how a detector was made, as the project page and detect mode name it
export const METHODS = {pretrained: "pretrained features", scratch: "trained from scratch",
                        imagenet: "ImageNet EfficientNet-Lite0, fine-tuned", "training-free": "feature similarity",
                        "look-alikes": "SAM's proposals matched to the clicked objects"};

export function seconds(s) {
  return s < 90 ? `${Math.max(1, Math.round(s))} s` : `${Math.round(s / 60)} min`;
}
