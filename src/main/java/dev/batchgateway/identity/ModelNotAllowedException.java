package dev.batchgateway.identity;

import java.util.List;

/** The caller's key was issued for other models than the one asked for (403, naming the model and those allowed). */
public class ModelNotAllowedException extends NotAllowedException {

    private final String model;

    public ModelNotAllowedException(String model, List<String> allowed) {
        super("this API key may not use the model '" + model + "': it may use " + String.join(", ", allowed));
        this.model = model;
    }

    public String model() {
        return model;
    }
}
